"""The engine's model client for an eval: answers from the cache, else from the endpoint, within the cap.

The review engine calls :meth:`CachingCompleter.complete` exactly as it calls the real client,
so a case is reviewed with the same prompt, anchoring and filters as ``reviewbot review``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reviewbot.engine.pricing import cost_report
from reviewbot.engine.tokens import estimate_messages
from reviewbot.engine.usage import Usage
from reviewbot.errors import ConfigError
from reviewbot.eval.cache import Answer, AnswerCache, Request
from reviewbot.eval.models import ModelUnderTest
from reviewbot.eval.spend import CostGuard

if TYPE_CHECKING:
    from reviewbot.engine.llm import ModelClient

# The name the engine's requests give their answer schema (ModelClient.complete's default).
SCHEMA_NAME = "review"


def price_needed(model: ModelUnderTest) -> str:
    return (
        f"--max-cost needs the input and output prices of {model.model}; add input_price= and output_price= "
        "(USD per million tokens) to its --model, or set REVIEWBOT_PRICES"
    )


def request_for(
    model: ModelUnderTest, messages: list[dict[str, str]], schema: dict[str, Any], schema_name: str = SCHEMA_NAME
) -> Request:
    """The cache's view of a request ``model`` would send."""
    settings = model.settings
    return Request.of(
        base_url=settings.base_url,
        model=settings.model,
        messages=messages,
        schema=schema,
        schema_name=schema_name,
        temperature=settings.temperature,
        max_output_tokens=settings.max_output_tokens,
    )


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One answer a case got: how long the endpoint took for it (the first time), and whether it was cached."""

    seconds: float
    cached: bool
    usage: Usage


class Endpoint:
    """One model's client, opened on the first request that misses the cache: a rerun from the
    cache needs no key and opens no connection."""

    def __init__(self, model: ModelUnderTest) -> None:
        self.model = model
        self._client: ModelClient | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> ModelClient:
        # Imported here so a dry run never loads the HTTP client stack.
        from reviewbot.engine.llm import ModelClient

        async with self._lock:
            if self._client is None:
                self._client = ModelClient.from_settings(self.model.settings)
            return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


class CachingCompleter:
    """A :class:`~reviewbot.engine.review.Completer` for one case of one model; ``calls`` logs its answers."""

    def __init__(self, endpoint: Endpoint, cache: AnswerCache, guard: CostGuard) -> None:
        self._endpoint = endpoint
        self._cache = cache
        self._guard = guard
        self.calls: list[CallRecord] = []

    async def complete(
        self, messages: list[dict[str, str]], schema: dict[str, Any], schema_name: str = SCHEMA_NAME
    ) -> Answer:
        model = self._endpoint.model
        request = request_for(model, messages, schema, schema_name)
        cached = self._cache.get(request)
        if cached is not None:
            self.calls.append(CallRecord(cached.seconds, True, cached.usage))
            return cached
        worst = self._worst_case(messages)
        if worst is None:
            if self._guard.limit is not None:
                raise ConfigError(price_needed(model))
            worst = 0.0
        await self._guard.reserve(worst)
        spent = 0.0
        try:
            reply = await (await self._endpoint.client()).complete(messages, schema, schema_name)
            answer = Answer(reply.text, reply.usage, reply.finish_reason, reply.seconds)
            spent = self._cost(reply.usage, worst)
        finally:
            await self._guard.settle(worst, spent)
        self._cache.put(request, answer)
        self.calls.append(CallRecord(answer.seconds, False, answer.usage))
        return answer

    def _worst_case(self, messages: list[dict[str, str]]) -> float | None:
        """The most this request may cost: its estimated prompt and a full answer (None without prices)."""
        model = self._endpoint.model
        quote = model.options.prices.quote(model.model)
        return quote.request_cost(estimate_messages(messages), model.settings.max_output_tokens) if quote else None

    def _cost(self, usage: Usage, worst: float) -> float:
        model = self._endpoint.model
        usd = cost_report(usage, model.model, model.options.prices).usd
        return usd if usd is not None else worst
