"""A fake OpenAI-compatible chat-completions server for tests and benchmarks.

A Starlette app served by a real uvicorn server on 127.0.0.1 in a background thread, so the
real ``openai`` client talks to it over loopback. It records every request and answers from a
per-test script: a FIFO queue of :class:`Reply` values, then a default responder.

    server = FakeOpenAI()
    server.start()
    server.push(Reply.status(429, headers={"retry-after-ms": "10"}), Reply.json({"findings": []}))
    ...  # point a client at server.base_url
    server.requests[0].body["response_format"]
    server.stop()

Replies (class methods of :class:`Reply`):

- ``Reply.streamed_anyway(content)``: server-sent events though the request asked for none
- ``Reply.json_text(text, status=200, headers=...)``: exactly this text as the JSON body (``""`` for none)
- ``Reply.json(obj, usage=..., finish_reason="stop", reasoning=None)``: a completion whose content is ``obj`` as JSON
- ``Reply.text(content, usage=..., finish_reason="stop", reasoning=None)``: a completion with this content
- ``Reply.no_usage(content_or_obj)``: a completion without a ``usage`` object
- ``Reply.status(code, headers=..., message=...)``: an error status with OpenAI's error body
- ``Reply.error(code, message, error_type=..., param=..., error_code=..., headers=...)``: the same, spelled out
- ``Reply.raw(body, status=200, headers=...)``: any JSON body, e.g. ``{"choices": []}``
- ``Reply.delay(seconds, then=None)``: wait, then answer with ``then`` (the default responder if None)

``usage`` is a :class:`TokenUsage` (with optional ``reasoning_tokens`` and ``cost``), None for no
usage, or ``"auto"`` (the default) for counts estimated from the text (about 4 characters a token).
Requests with ``"stream": true`` get server-sent ``chat.completion.chunk`` events, a usage chunk
when ``stream_options.include_usage`` is set, then ``data: [DONE]``.

``reasoning`` is a :class:`Reasoning`: the thinking a server with a reasoning parser sends beside
the answer, in the message's ``reasoning_content`` (DeepSeek's API, vLLM before 0.11) or
``reasoning`` (OpenRouter, vLLM since 0.11) field, and in the deltas ahead of the content when
streaming.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from loopback import LoopbackServer

DEFAULT_MODEL: Final = "fake-model"

_ERRORS: Final[dict[int, tuple[str, str | None, str]]] = {
    # status: (type, code, message)
    400: ("invalid_request_error", None, "Bad request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided: {key}."),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported.",
    ),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model `{model}` does not exist or you do not have access to it.",
    ),
    408: ("timeout", None, "Request timed out."),
    409: ("invalid_request_error", None, "Conflict."),
    422: ("invalid_request_error", None, "Unprocessable entity."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request."),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """The ``usage`` object of a completion; ``cost`` is OpenRouter's extra field (USD).

    ``cached_tokens`` are prompt tokens served from the provider's cache, reported as OpenAI does
    (``prompt_tokens_details.cached_tokens``, a part of ``prompt_tokens``); ``cache_hit_tokens``
    the same as DeepSeek reports them (``prompt_cache_hit_tokens`` beside ``prompt_cache_miss_tokens``).
    """

    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int | None = None
    cost: float | None = None
    cached_tokens: int | None = None
    cache_hit_tokens: int | None = None

    def to_json(self) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }
        if self.reasoning_tokens is not None:
            usage["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
        if self.cost is not None:
            usage["cost"] = self.cost
        if self.cached_tokens is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        if self.cache_hit_tokens is not None:
            usage["prompt_cache_hit_tokens"] = self.cache_hit_tokens
            usage["prompt_cache_miss_tokens"] = self.prompt_tokens - self.cache_hit_tokens
        return usage


UsageSpec = TokenUsage | Literal["auto"] | None


@dataclass(frozen=True, slots=True)
class Reasoning:
    """The model's thinking, sent in its own field of the message beside ``content``."""

    text: str
    field: Literal["reasoning_content", "reasoning"] = "reasoning_content"


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer. Build it with the class methods rather than by hand."""

    status_code: int = 200
    content: str | None = ""
    finish_reason: str | None = "stop"
    usage: UsageSpec = "auto"
    headers: Mapping[str, str] = field(default_factory=dict)
    error_body: ErrorBody | None = None
    raw_body: Any = None
    delay_seconds: float = 0.0
    use_default: bool = False
    reasoning: Reasoning | None = None
    always_stream: bool = False  # stream even when the request did not ask to, as some proxies do
    body_text: str | None = None  # exactly these bytes as an application/json body

    @classmethod
    def streamed_anyway(cls, content: str, *, usage: UsageSpec = "auto", finish_reason: str = "stop") -> Reply:
        """Server-sent events whatever the request asked, with the usage chunk at the end."""
        return cls(content=content, usage=usage, finish_reason=finish_reason, always_stream=True)

    @classmethod
    def json_text(cls, text: str, *, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
        """A body written by hand, e.g. a number no JSON encoder writes (``1e400``), or an error
        status with no body at all (``""``), as some servers send."""
        return cls(status_code=status, body_text=text, headers=dict(headers or {}))

    @classmethod
    def text(
        cls,
        content: str | None,
        *,
        usage: UsageSpec = "auto",
        finish_reason: str | None = "stop",
        reasoning: Reasoning | None = None,
    ) -> Reply:
        return cls(content=content, usage=usage, finish_reason=finish_reason, reasoning=reasoning)

    @classmethod
    def json(
        cls,
        obj: Any,
        *,
        usage: UsageSpec = "auto",
        finish_reason: str | None = "stop",
        reasoning: Reasoning | None = None,
    ) -> Reply:
        return cls(content=json.dumps(obj), usage=usage, finish_reason=finish_reason, reasoning=reasoning)

    @classmethod
    def no_usage(cls, content: Any) -> Reply:
        """A completion without ``usage``; a non-string ``content`` is sent as JSON."""
        return cls(content=content if isinstance(content, str) else json.dumps(content), usage=None)

    @classmethod
    def status(cls, code: int, *, headers: Mapping[str, str] | None = None, message: str | None = None) -> Reply:
        """An error status with the error body OpenAI sends for it."""
        kind, error_code, default_message = _ERRORS.get(code, ("api_error", None, f"HTTP {code}"))
        body = ErrorBody(message=message or default_message, type=kind, code=error_code)
        return cls(status_code=code, headers=dict(headers or {}), error_body=body)

    @classmethod
    def error(
        cls,
        code: int,
        message: str,
        *,
        error_type: str = "invalid_request_error",
        param: str | None = None,
        error_code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        body = ErrorBody(message=message, type=error_type, param=param, code=error_code)
        return cls(status_code=code, headers=dict(headers or {}), error_body=body)

    @classmethod
    def raw(cls, body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
        """Exactly this JSON body, e.g. ``{"choices": []}`` or a completion with null content."""
        return cls(status_code=status, headers=dict(headers or {}), raw_body=body)

    @classmethod
    def delay(cls, seconds: float, then: Reply | None = None) -> Reply:
        """Wait ``seconds`` (server side), then answer ``then``, or as the default responder would."""
        if then is None:
            return cls(delay_seconds=seconds, use_default=True)
        return replace(then, delay_seconds=then.delay_seconds + seconds)


# How real servers refuse a request's response_format, in their own words and body shapes, as
# reported in their code or in issues (the source is beside each).
FORMAT_REFUSALS: Final[dict[str, Reply]] = {
    # OpenAI, a model without Structured Outputs (github.com/langchain-ai/langchain/issues/31490)
    "openai-unsupported": Reply.error(
        400,
        "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model. Learn more "
        "about supported models at the Structured Outputs guide: https://platform.openai.com/docs/guides/structured-outputs",
    ),
    # OpenAI, a schema strict mode refuses (github.com/dottxt-ai/outlines/issues/1254)
    "openai-schema": Reply.error(
        400,
        "Invalid schema for response_format 'review': In context=('properties', 'findings'), 'default' is not "
        "permitted.",
        param="response_format",
    ),
    # OpenRouter passes the provider's refusal on in metadata.raw (github.com/prism-php/prism/pull/813)
    "openrouter": Reply.raw(
        {
            "error": {
                "message": "Provider returned error",
                "code": 400,
                "metadata": {
                    "raw": '{"error": {"message": "Invalid schema for response_format \'review\': In context=(), '
                    "'required' is required to be supplied and to be an array including every key in properties. "
                    'Missing \'findings\'.", "type": "invalid_request_error", "param": "response_format"}}',
                    "provider_name": "OpenAI",
                },
            }
        },
        status=400,
    ),
    # vLLM, xgrammar (vllm/v1/structured_output/backend_xgrammar.py; github.com/vllm-project/vllm/issues/16321)
    "vllm-xgrammar": Reply.raw(
        {
            "object": "error",
            "message": "The provided JSON schema contains features not supported by xgrammar.",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        },
        status=400,
    ),
    # vLLM, llguidance (vllm/v1/structured_output/backend_guidance.py; github.com/z-lab/paroquant/issues/31)
    "vllm-guidance": Reply.error(400, "Grammar error: Unknown format: uri", error_type="BadRequestError"),
    # llama.cpp's llama-server (github.com/browseros-ai/BrowserOS/issues/255)
    "llama.cpp-schema": Reply.raw(
        {
            "error": {
                "code": 400,
                "message": 'JSON schema conversion failed:\nUnrecognized schema: {"description":"Arguments"}',
                "type": "invalid_request_error",
            }
        },
        status=400,
    ),
    # llama.cpp's llama-server (github.com/lidge-jun/opencodex/issues/2135)
    "llama.cpp-grammar": Reply.raw(
        {
            "error": {
                "code": 400,
                "message": "Failed to initialize samplers: failed to parse grammar",
                "type": "invalid_request_error",
            }
        },
        status=400,
    ),
    # llama-server before json_schema support, as a 500 (github.com/ggml-org/llama.cpp/issues/9522)
    "llama.cpp-old": Reply.raw(
        {
            "error": {
                "code": 500,
                "message": 'response_format type must be one of "text" or "json_object", but got: json_schema',
                "type": "server_error",
            }
        },
        status=500,
    ),
    # LM Studio, its error a bare string (github.com/bhimrazy/receipt-ocr/issues/20)
    "lm-studio": Reply.raw({"error": "'response_format.json_schema.schema' must be an object"}, status=400),
    # Ollama, a schema its grammar cannot take, as a 500 (github.com/datalab-to/marker/issues/984)
    "ollama": Reply.error(500, "invalid JSON schema in format", error_type="api_error"),
    # LiteLLM's proxy (litellm/utils.py get_optional_params; github.com/BerriAI/litellm/pull/33738)
    "litellm": Reply.error(
        400,
        "litellm.UnsupportedParamsError: openai does not support parameters: ['response_format'], for "
        "model=local-model. To drop these, set `litellm.drop_params=True` or for proxy:\n\n`litellm_settings:\n "
        "drop_params: true`\n. Received Model Group=local-model\nAvailable Model Group Fallbacks=None",
        error_code="400",
    ),
    # DeepSeek's API (github.com/llm-exe/llm-exe/issues/662)
    "deepseek": Reply.error(400, "This response_format type is unavailable now", error_code="invalid_request_error"),
    # DeepSeek's API in 2025, as a 422 (github.com/browser-use/browser-use/pull/215, dzhng/deep-research#22)
    "deepseek-2025": Reply.error(
        422,
        "Failed to deserialize the JSON body into the target type: response_format: response_format.type "
        "`json_schema` is unavailable now at line 1 column 5369",
    ),
    # TGI started with grammar support off, a 422 (router/src/validation.rs ValidationError::Grammar)
    "tgi": Reply.raw({"error": "grammar is not supported", "error_type": "validation"}, status=422),
}


Responder = Callable[[dict[str, Any]], Reply]


def default_responder(body: dict[str, Any]) -> Reply:
    """What the server answers when no reply is queued: a review with no findings."""
    return Reply.json({"findings": []})


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request as the server saw it; ``received_at`` is ``time.monotonic()`` on arrival."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    received_at: float


class FakeOpenAI:
    """The server and its controller. ``start()`` once, ``reset()`` between tests, ``stop()``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Reply] = deque()
        self._default: Responder = default_responder
        self._requests: list[RecordedRequest] = []
        self._in_flight = 0
        self._max_in_flight = 0
        self._seconds_per_request = 0.0
        self._tokens_per_second: float | None = None
        self._counter = 0
        self._loopback = LoopbackServer("fake-openai")
        self.port = 0

    # -- the controller -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """What a client takes as its base URL, ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received since the last reset, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """The most requests being handled at once since the last reset."""
        with self._lock:
            return self._max_in_flight

    def push(self, *replies: Reply) -> None:
        """Queue replies; each request takes the oldest."""
        with self._lock:
            self._queue.extend(replies)

    def set_default(self, responder: Responder) -> None:
        """Answer with ``responder(request_json)`` when the queue is empty."""
        with self._lock:
            self._default = responder

    def set_latency(self, seconds_per_request: float = 0.0, output_tokens_per_second: float | None = None) -> None:
        """Make every completion take ``seconds_per_request`` plus its output tokens at this rate."""
        with self._lock:
            self._seconds_per_request = seconds_per_request
            self._tokens_per_second = output_tokens_per_second

    def reset(self) -> None:
        """Forget the script, the recorded requests, the default responder and the latency."""
        with self._lock:
            self._queue.clear()
            self._default = default_responder
            self._requests.clear()
            self._max_in_flight = self._in_flight
            self._seconds_per_request = 0.0
            self._tokens_per_second = None

    # -- the server's life ----------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Serve in a background thread; return once the server accepts connections."""
        self._loopback.start(self.app(), timeout)
        self.port = self._loopback.port

    def stop(self, timeout: float = 10.0) -> None:
        self._loopback.stop(timeout)

    def __enter__(self) -> FakeOpenAI:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the app --------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat_completions, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": DEFAULT_MODEL, "object": "model", "owned_by": "fake"}]})

    async def _chat_completions(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _error_response(Reply.error(400, "We could not parse the JSON body of your request."))
        if not isinstance(body, dict):
            return _error_response(Reply.error(400, "The request body must be a JSON object."))
        with self._lock:
            self._requests.append(RecordedRequest(request.url.path, body, dict(request.headers), time.monotonic()))
            reply = self._queue.popleft() if self._queue else None
            default = self._default
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            self._counter += 1
            number = self._counter
        try:
            return await self._answer(request, body, reply, default, number)
        finally:
            with self._lock:
                self._in_flight -= 1

    async def _answer(
        self, request: Request, body: dict[str, Any], reply: Reply | None, default: Responder, number: int
    ) -> Response:
        delay = 0.0
        if reply is None:
            reply = default(body)
        elif reply.use_default:
            # Reply.delay(seconds) without a reply of its own: wait, then answer as the default would.
            delay = reply.delay_seconds
            reply = default(body)
        delay += reply.delay_seconds
        if reply.body_text is not None:
            headers = {"content-type": "application/json", **reply.headers}
            return Response(reply.body_text, status_code=reply.status_code, headers=headers)
        if reply.status_code >= 400 or reply.raw_body is not None:
            if delay and await _sleep_unless_disconnected(request, delay):
                return Response(status_code=499)
            if reply.raw_body is not None:
                return JSONResponse(reply.raw_body, status_code=reply.status_code, headers=dict(reply.headers))
            return _error_response(reply, body, dict(request.headers))
        usage = _usage_of(reply, body)
        with self._lock:
            latency = self._seconds_per_request
            per_token = 1 / self._tokens_per_second if self._tokens_per_second else 0.0
        completion_tokens = usage.completion_tokens if usage is not None else _estimate(reply.content or "")
        if body.get("stream") or reply.always_stream:
            return self._stream(request, body, reply, usage, number, delay + latency, per_token)
        delay += latency + per_token * completion_tokens
        if delay and await _sleep_unless_disconnected(request, delay):
            return Response(status_code=499)
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.reasoning is not None:
            message[reply.reasoning.field] = reply.reasoning.text
        completion: dict[str, Any] = {
            "id": f"chatcmpl-fake-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", DEFAULT_MODEL),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": reply.finish_reason,
                    "logprobs": None,
                }
            ],
        }
        if usage is not None:
            completion["usage"] = usage.to_json()
        return JSONResponse(completion, headers=dict(reply.headers))

    def _stream(
        self,
        request: Request,
        body: dict[str, Any],
        reply: Reply,
        usage: TokenUsage | None,
        number: int,
        first_token_delay: float,
        per_token: float,
    ) -> Response:
        base = {
            "id": f"chatcmpl-fake-{number}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model", DEFAULT_MODEL),
        }
        options = body.get("stream_options")
        include_usage = reply.always_stream or (isinstance(options, dict) and bool(options.get("include_usage")))

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            data = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]}
            return _event(data)

        async def events() -> AsyncIterator[bytes]:
            if first_token_delay:
                await asyncio.sleep(first_token_delay)
            yield chunk({"role": "assistant", "content": ""})
            if reply.reasoning is not None:
                for piece in _pieces(reply.reasoning.text):
                    yield chunk({reply.reasoning.field: piece})
            for piece in _pieces(reply.content or ""):
                if per_token:
                    await asyncio.sleep(per_token * _estimate(piece))
                yield chunk({"content": piece})
            yield chunk({}, reply.finish_reason)
            if include_usage and usage is not None:
                yield _event({**base, "choices": [], "usage": usage.to_json()})
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream", headers=dict(reply.headers))


async def _sleep_unless_disconnected(request: Request, seconds: float) -> bool:
    """Sleep; return True (early) if the client hung up meanwhile."""

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    sleeper = asyncio.ensure_future(asyncio.sleep(seconds))
    done, pending = await asyncio.wait({watcher, sleeper}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return watcher in done


def _error_response(
    reply: Reply, body: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
) -> Response:
    error = reply.error_body or ErrorBody(message=f"HTTP {reply.status_code}", type="api_error")
    key = (headers or {}).get("authorization", "").removeprefix("Bearer ")
    message = error.message.replace("{key}", key).replace("{model}", str((body or {}).get("model", "")))
    payload = {"error": {"message": message, "type": error.type, "param": error.param, "code": error.code}}
    return JSONResponse(payload, status_code=reply.status_code, headers=dict(reply.headers))


def _usage_of(reply: Reply, body: dict[str, Any]) -> TokenUsage | None:
    if reply.usage != "auto":
        return reply.usage
    messages = body.get("messages")
    prompt = 0
    if isinstance(messages, list):
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            prompt += 4 + (_estimate(content) if isinstance(content, str) else 0)
    return TokenUsage(prompt_tokens=prompt, completion_tokens=_estimate(reply.content or ""))


def _estimate(text: str) -> int:
    """Tokens in ``text`` at about four characters a token."""
    return max(1, (len(text) + 3) // 4) if text else 0


def _pieces(text: str, size: int = 16) -> list[str]:
    return [text[start : start + size] for start in range(0, len(text), size)]


def _event(data: Mapping[str, Any]) -> bytes:
    return f"data: {json.dumps(data)}\n\n".encode()
