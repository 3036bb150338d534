"""What a chat-completions answer says, read from its JSON (or its event stream) as sent.

Servers differ from OpenAI's documented shape in ways that must not cost a review or misstate
its cost: some send no ``usage`` (or ``null``, or zeros), a reasoning model that spent its
``max_tokens`` thinking sends ``content: null`` with the usage it was billed, some proxies stream
(``text/event-stream``) although no stream was asked for, OpenRouter reports the cost in
``usage.cost`` and LiteLLM in its ``x-litellm-response-cost`` header. Everything here is pure.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from reviewbot.engine.usage import Usage

#: LiteLLM's proxy reports what the request cost it in this response header.
LITELLM_COST_HEADER: Final = "x-litellm-response-cost"


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer's content, why it ended and its usage object, as the endpoint sent them."""

    content: str | None
    finish_reason: str | None
    usage: Mapping[str, Any] | None
    has_choice: bool
    streamed: bool = False


def answer_of(data: object) -> Answer:
    """The answer in a chat completion's JSON (a dict; anything else holds none)."""
    if not isinstance(data, Mapping):
        return Answer(None, None, None, has_choice=False)
    choices = data.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], Mapping) else None
    message = choice.get("message") if choice is not None else None
    content = message.get("content") if isinstance(message, Mapping) else None
    finish = choice.get("finish_reason") if choice is not None else None
    usage = data.get("usage")
    return Answer(
        content if isinstance(content, str) else None,
        finish if isinstance(finish, str) else None,
        usage if isinstance(usage, Mapping) else None,
        has_choice=choice is not None,
    )


def looks_like_stream(text: str) -> bool:
    """Whether a body is server-sent events (``data: …`` lines) rather than one JSON object."""
    return text.lstrip().startswith(("data:", "event:", ":"))


def answer_of_stream(text: str) -> Answer:
    """The answer assembled from ``chat.completion.chunk`` events: the content deltas joined, the
    last finish reason, and the usage chunk if the server sent one."""
    parts: list[str] = []
    finish: str | None = None
    usage: Mapping[str, Any] | None = None
    has_choice = False
    for line in text.splitlines():
        if not line.startswith("data:"):
            continue
        payload = line[len("data:") :].strip()
        if payload == "[DONE]":
            break
        try:
            chunk = json.loads(payload)
        except ValueError:
            continue
        if not isinstance(chunk, Mapping):
            continue
        if isinstance(chunk.get("usage"), Mapping):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, Mapping) or choice.get("index", 0) != 0:
                continue
            has_choice = True
            delta = choice.get("delta")
            piece = delta.get("content") if isinstance(delta, Mapping) else None
            if isinstance(piece, str):
                parts.append(piece)
            if isinstance(choice.get("finish_reason"), str):
                finish = choice["finish_reason"]
    return Answer("".join(parts) if parts else None, finish, usage, has_choice=has_choice, streamed=True)


@dataclass(frozen=True, slots=True)
class ReadUsage:
    """Usage as reported, and what could not be taken from it.

    ``reported`` is False when the endpoint sent no token counts (nothing, ``null`` or zeros):
    the caller then estimates them. ``rejected_cost`` is a reported cost that is no amount of
    dollars (negative, infinite, not a number), which the price layers replace.
    """

    usage: Usage
    reported: bool
    rejected_cost: str | None = None


def read_usage(raw: Mapping[str, Any] | None, headers: Mapping[str, str] | None = None) -> ReadUsage:
    """Tokens, reasoning and cached tokens, and the endpoint's own cost (``usage.cost``, else LiteLLM's header)."""
    raw = raw or {}
    prompt = _count(raw.get("prompt_tokens"))
    completion = _count(raw.get("completion_tokens"))
    details = raw.get("completion_tokens_details")
    reasoning = _count(details.get("reasoning_tokens")) if isinstance(details, Mapping) else 0
    # OpenAI counts cached prompt tokens in prompt_tokens_details.cached_tokens; DeepSeek in its own
    # prompt_cache_hit_tokens. Both are a part of prompt_tokens.
    prompt_details = raw.get("prompt_tokens_details")
    cached = prompt_details.get("cached_tokens") if isinstance(prompt_details, Mapping) else None
    if cached is None:
        cached = raw.get("prompt_cache_hit_tokens")
    stated = raw.get("cost")
    if stated is None and headers is not None:
        stated = headers.get(LITELLM_COST_HEADER)
    cost = _cost(stated)
    rejected = repr(stated) if stated is not None and cost is None else None
    usage = Usage(
        input_tokens=prompt,
        output_tokens=completion,
        reasoning_tokens=reasoning,
        requests=1,
        cost_usd=cost,
        cached_tokens=min(_count(cached), prompt),
    )
    return ReadUsage(usage, reported=prompt > 0 or completion > 0, rejected_cost=rejected)


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _cost(value: object) -> float | None:
    """A reported cost in dollars, or None when it is none: a bool, negative, infinite or not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int | float):
        number = float(value)
        return number if math.isfinite(number) and number >= 0 else None
    return None
