"""The model endpoint: one chat completion at a time, over any OpenAI-compatible API.

This is the only module that imports ``openai``. It asks for structured output and steps down
a ladder when the endpoint refuses it (``json_schema`` → ``json_object`` → plain text),
remembering the level that worked: only a refusal about the response format takes a step (see
:mod:`reviewbot.engine.refusal`), any other is an error at once. It asks thinking models not to
think (and stops asking if the endpoint refuses the field); it bounds the requests in flight; and
it turns every SDK error into a :class:`ModelError` whose message never contains the API key.

Retries of 408, 409, 429, 5xx and timeouts (with exponential backoff, honouring
``retry-after`` / ``retry-after-ms`` up to 120 s) are the SDK's own, set by ``max_retries``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, cast

import openai
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam
from openai.types.chat.completion_create_params import ResponseFormat
from openai.types.shared_params.response_format_json_object import ResponseFormatJSONObject
from openai.types.shared_params.response_format_json_schema import JSONSchema, ResponseFormatJSONSchema

from reviewbot import tls
from reviewbot.engine.answer import answer_of, answer_of_stream, looks_like_stream, read_usage
from reviewbot.engine.refusal import about_response_format, described, server_words
from reviewbot.engine.tokens import estimate_messages, estimate_tokens
from reviewbot.engine.usage import Usage
from reviewbot.errors import ConfigError, ContextLengthError, ModelAuthError, ModelError

if TYPE_CHECKING:
    from reviewbot.settings import Settings

log = logging.getLogger("reviewbot.llm")

ResponseFormatMode = Literal["json_schema", "json_object", "text"]

# The structured-output ladder, most structured first.
_LADDER: Final[tuple[ResponseFormatMode, ...]] = ("json_schema", "json_object", "text")

# vLLM, SGLang and llama.cpp pass these to the chat template; Qwen3 and DeepSeek templates
# then skip the reasoning phase.
_THINKING_FIELD: Final = "chat_template_kwargs"
_NO_THINKING_BODY: Final[dict[str, object]] = {_THINKING_FIELD: {"enable_thinking": False}}

_THINK_OPEN: Final = "<think>"
_THINK_CLOSE: Final = "</think>"


@dataclass(frozen=True, slots=True)
class ModelReply:
    """One answer of the model and what it cost.

    ``text`` is the assistant's content without the reasoning block it may start with (see
    :func:`strip_thinking`); reasoning sent in a field of its own is never read.
    ``usage_reported`` is False when the endpoint sent no token counts: ``usage`` then holds
    estimates (``usage.estimated``). ``response_format`` is the ladder level that produced the
    answer. ``seconds`` is the time spent in requests for this answer (SDK retries and ladder steps included, waiting
    for a concurrency slot excluded).
    """

    text: str
    usage: Usage
    usage_reported: bool
    response_format: ResponseFormatMode
    finish_reason: str | None
    seconds: float
    model: str = ""  # the model that answered (a fallback's, when the chain moved on)


def strip_thinking(content: str) -> str:
    """The answer in a model's content: without the ``<think>…</think>`` block it opens with.

    Qwen3 and DeepSeek-R1 served without a reasoning parser (vLLM, Ollama, llama.cpp) write
    their reasoning first, in a ``<think>`` block. Only that leading block is the model's own:
    the tags anywhere else may be quotes of the pull request, so they are left alone. Like
    vLLM's reasoning parsers, the block ends at the first ``</think>``; one opened and never
    closed (the token limit ran out while thinking) leaves no answer at all. When the chat
    template opened the block in the prompt, the content holds only its end; the reasoning then
    stays in the text and :func:`reviewbot.engine.findings.parse_reply` finds the answer after it.
    Servers with a reasoning parser send the reasoning in ``reasoning_content`` or ``reasoning``
    instead, which this client never reads.
    """
    text = content.lstrip()
    if not text.startswith(_THINK_OPEN):
        return content.strip()
    _, closed, answer = text.partition(_THINK_CLOSE)
    return answer.strip() if closed else ""


def _http_library() -> ModuleType:
    """The module openai's HTTP client comes from: httpx, or in newer releases httpx2."""
    return sys.modules[openai.DefaultAsyncHttpxClient.__mro__[1].__module__.partition(".")[0]]


class ModelClient:
    """Chat completions against one endpoint and model, at most ``concurrency`` at a time."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        model: str,
        timeout: float,
        max_retries: int,
        concurrency: int,
        max_output_tokens: int,
        temperature: float,
        disable_thinking: bool,
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, not {concurrency}")
        self.base_url = base_url
        self.model = model
        self._api_key = api_key
        self._timeout = timeout
        self._max_retries = max_retries
        self._max_output_tokens = max_output_tokens
        self._temperature = temperature
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            max_retries=max_retries,
            http_client=openai.DefaultAsyncHttpxClient(verify=tls.shared_context(_http_library())),
        )
        self._slots = asyncio.Semaphore(concurrency)
        # Both only ever step down, so concurrent requests that each step down agree.
        self._level = 0
        self._send_thinking_switch = disable_thinking

    @classmethod
    def from_settings(
        cls, settings: Settings, *, model: str | None = None, base_url: str | None = None, api_key: str | None = None
    ) -> ModelClient:
        """A client configured from ``REVIEWBOT_*`` settings (a fallback's model, endpoint and key
        replacing the configured ones); ConfigError when there is no key."""
        url = base_url or settings.base_url
        key = api_key or (settings.api_key.get_secret_value() if settings.api_key is not None else None)
        if key is None:
            raise ConfigError(f"no API key: set REVIEWBOT_API_KEY (or OPENAI_API_KEY) to the key of {url}")
        return cls(
            base_url=url,
            api_key=key,
            model=model or settings.model,
            timeout=settings.timeout,
            max_retries=settings.max_retries,
            concurrency=settings.concurrency,
            max_output_tokens=settings.max_output_tokens,
            temperature=settings.temperature,
            disable_thinking=settings.disable_thinking,
        )

    @property
    def response_format(self) -> ResponseFormatMode:
        """The ladder level the next request starts at."""
        return _LADDER[self._level]

    @property
    def sends_thinking_switch(self) -> bool:
        """Whether requests still carry ``chat_template_kwargs.enable_thinking = false``."""
        return self._send_thinking_switch

    async def complete(
        self, messages: list[dict[str, str]], schema: dict[str, Any], schema_name: str = "review"
    ) -> ModelReply:
        """Ask for one answer following ``schema`` as closely as the endpoint allows.

        Raises ModelAuthError when the key is refused and ModelError for any other failure
        left after the SDK's retries.
        """
        level = self._level
        spent: list[float] = []
        refusal = ""
        while True:
            switch = self._send_thinking_switch
            try:
                completion, headers = await self._create(messages, _LADDER[level], schema, schema_name, switch, spent)
            except openai.APIStatusError as exc:
                if _too_long(exc):  # no response format would make the request shorter
                    raise self._model_error(exc) from exc
                if switch and exc.status_code in (400, 422) and _mentions(exc, _THINKING_FIELD):
                    self._send_thinking_switch = False
                    continue
                if level + 1 < len(_LADDER) and _refuses_format(exc):
                    level += 1
                    refusal = f"HTTP {exc.status_code}: {_detail(exc)}"
                    continue
                raise self._model_error(exc) from exc
            except openai.OpenAIError as exc:
                raise self._model_error(exc) from exc
            break
        if level > self._level:
            self._level = level
            log.warning(
                "the endpoint %s refused response_format %s (%s); its later requests ask for %s",
                self.base_url,
                _LADDER[level - 1],
                self._redact(refusal),
                _LADDER[level],
            )
        return self._reply(completion, headers, _LADDER[level], sum(spent), messages)

    async def aclose(self) -> None:
        await self._client.close()

    async def __aenter__(self) -> ModelClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _create(
        self,
        messages: list[dict[str, str]],
        mode: ResponseFormatMode,
        schema: dict[str, Any],
        schema_name: str,
        thinking_switch: bool,
        spent: list[float],
    ) -> tuple[object, dict[str, str]]:
        """One request (with the SDK's retries) in a concurrency slot: its parsed body and headers;
        appends its duration to ``spent``."""
        async with self._slots:
            started = time.perf_counter()
            try:
                raw = await self._client.chat.completions.with_raw_response.create(
                    model=self.model,
                    messages=cast("list[ChatCompletionMessageParam]", messages),
                    temperature=self._temperature,
                    max_tokens=self._max_output_tokens,
                    response_format=_response_format(mode, schema, schema_name),
                    extra_body=_NO_THINKING_BODY if thinking_switch else None,
                )
                # Any body: the SDK hands back the text of one that is not JSON (an event stream).
                return raw.parse(), dict(raw.headers)
            finally:
                spent.append(time.perf_counter() - started)

    def _reply(
        self,
        completion: object,
        headers: Mapping[str, str],
        mode: ResponseFormatMode,
        seconds: float,
        messages: list[dict[str, str]],
    ) -> ModelReply:
        # The SDK builds the response without validating it, so check what a sloppy endpoint may leave out.
        if isinstance(completion, ChatCompletion):
            answer = answer_of(completion.model_dump())
        elif isinstance(completion, str) and looks_like_stream(completion):
            # Some servers and proxies stream whatever was asked: the events still hold the answer.
            answer = answer_of_stream(completion)
        else:
            answer = answer_of(completion)
        if not answer.has_choice:
            shown = completion[:80] if isinstance(completion, str) else type(completion).__name__
            raise ModelError(
                f"the endpoint returned no answer (model {self.model!r} at {self.base_url}): "
                f"its response holds no chat completion choice ({shown!r})"
            )
        read = read_usage(answer.usage, headers)
        usage = read.usage
        if read.rejected_cost is not None:
            log.warning(
                "the endpoint %s reported a cost of %s, which is no amount of dollars; the request is priced "
                "from the price layers instead",
                self.base_url,
                read.rejected_cost,
            )
        content = answer.content or ""
        if not read.reported:
            # No token counts: estimate them from the text, and say they are estimates.
            usage = dataclasses.replace(
                usage,
                input_tokens=estimate_messages(messages),
                output_tokens=estimate_tokens(content) if content else 0,
                estimated_requests=1,
            )
        return ModelReply(
            # A reasoning model that spent max_tokens thinking sends no content, but was billed.
            text=strip_thinking(content),
            usage=usage,
            usage_reported=read.reported,
            response_format=mode,
            finish_reason=answer.finish_reason,
            seconds=seconds,
            model=self.model,
        )

    def _model_error(self, exc: openai.OpenAIError) -> ModelError:
        where = self.base_url
        retries = {0: "with no retry", 1: "after 1 retry"}.get(self._max_retries, f"after {self._max_retries} retries")
        kind: type[ModelError] = ModelError
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            kind = ModelAuthError
            message = f"the endpoint {where} refused the API key (HTTP {exc.status_code}); check REVIEWBOT_API_KEY"
        elif isinstance(exc, openai.RateLimitError):
            message = (
                f"the endpoint {where} is rate limiting requests (HTTP 429 rate limit), still "
                f"{retries}; lower REVIEWBOT_CONCURRENCY or try again later"
            )
        elif isinstance(exc, openai.NotFoundError):
            message = (
                f"the endpoint {where} answered HTTP 404: the model name {self.model!r} may be unknown to it "
                f"(check REVIEWBOT_MODEL), or the base URL may lack its /v1"
            )
        elif isinstance(exc, openai.APIStatusError) and _too_long(exc):
            kind = ContextLengthError
            message = (
                f"the endpoint {where} refused a request as longer than {self.model!r} can take "
                f"(HTTP {exc.status_code}: {_detail(exc)}); set REVIEWBOT_CONTEXT_WINDOW to the model's real "
                "context window (the server's own limit, e.g. vLLM's --max-model-len or Ollama's num_ctx)"
            )
        elif isinstance(exc, openai.APIStatusError):
            message = f"the endpoint {where} answered HTTP {exc.status_code}: {_detail(exc)}"
        elif isinstance(exc, openai.APITimeoutError):
            message = (
                f"the request to {where} timed out after {self._timeout:g} s, {retries}; "
                f"raise REVIEWBOT_TIMEOUT for slow models"
            )
        elif isinstance(exc, openai.APIConnectionError):
            cause = f": {exc.__cause__}" if exc.__cause__ is not None and str(exc.__cause__) else ""
            message = f"could not connect to {where}, {retries}{cause}"
        else:
            message = f"the request to {where} failed: {exc}"
        status = exc.status_code if isinstance(exc, openai.APIStatusError) else None
        return kind(self._redact(message), status=status)

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if len(self._api_key) >= 4 else text


def _response_format(mode: ResponseFormatMode, schema: dict[str, Any], name: str) -> ResponseFormat | openai.Omit:
    if mode == "json_schema":
        return ResponseFormatJSONSchema(
            type="json_schema", json_schema=JSONSchema(name=name, schema=schema, strict=True)
        )
    if mode == "json_object":
        return ResponseFormatJSONObject(type="json_object")
    return openai.omit


# How servers say a request does not fit the model: OpenAI's code, vLLM's and LiteLLM's "maximum
# context length", llama.cpp's exceed_context_size_error, and the like.
_TOO_LONG: Final = re.compile(
    r"context_length_exceeded|maximum context length|context (?:length|window|size)|exceed_context_size|"
    r"too many tokens|prompt is too long",
    re.IGNORECASE,
)


def _said(exc: openai.APIStatusError) -> str:
    """What the server says of an error: its words, code and parameter. Not the rest of its body,
    which may echo the request (FastAPI's "input"): the pull request's code, or reviewbot's own fields."""
    return " ".join(filter(None, (server_words(exc.body), str(exc.code or ""), str(exc.param or ""))))


def _too_long(exc: openai.APIStatusError) -> bool:
    return exc.status_code in (400, 413, 422) and bool(_TOO_LONG.search(_said(exc)))


def _mentions(exc: openai.APIStatusError, word: str) -> bool:
    return word in _said(exc)


def _refuses_format(exc: openai.APIStatusError) -> bool:
    """Whether a lower rung of the ladder may be answered where this refusal came.

    A refusal about the response format is one, as a 400 or 422, or as the 500 some servers send
    (llama.cpp before json_schema, Ollama for a schema its grammar cannot take), after the SDK's retries.
    """
    if exc.status_code not in (400, 422, 500):
        return False
    if about_response_format(_said(exc)):
        return True
    # A 400 or 422 that gives no reason at all: the response format is all the next rung changes,
    # so asking once without it is the only way to a review; a rung is kept only once it answered.
    # A silent 500 is an outage, not a refusal.
    return exc.status_code != 500 and not server_words(exc.body)


def _detail(exc: openai.APIStatusError) -> str:
    """The endpoint's own error message, on one line."""
    return described(exc.body)
