"""The configured model and its fallbacks (``REVIEWBOT_FALLBACK_MODELS``), asked in order.

A request goes to the first model; when it fails in a way another model may not (5xx, 429 past
its retries, a timeout or broken connection, or 404 for a model the endpoint does not serve), the
next one is asked. A refused key or a prompt over the context window is raised at once: another
model would not mend the operator's key, and the engine splits a request that is too long.
Once a model has failed this way, later requests of the review start at the one that answered,
so a review does not wait out the same outage for every request.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

from reviewbot.engine.llm import ModelClient, ModelReply
from reviewbot.errors import ContextLengthError, ModelAuthError, ModelError
from reviewbot.settings import Settings


def moves_on(error: ModelError) -> bool:
    """Whether another model may answer where this one failed."""
    if isinstance(error, ModelAuthError | ContextLengthError):
        return False
    status = error.status
    return status is None or status in (404, 408, 409, 429) or status >= 500


class ModelChain:
    """Asks its clients in order, moving on when one fails in a way the next may not."""

    def __init__(self, clients: Sequence[ModelClient]) -> None:
        if not clients:
            raise ValueError("a model chain needs at least one client")
        self._clients = tuple(clients)
        self._first = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelClient | ModelChain:
        """The configured model's client, or a chain of it and its fallbacks when there are any."""
        primary = ModelClient.from_settings(settings)
        if not settings.fallback_models:
            return primary
        fallbacks = [
            ModelClient.from_settings(
                settings,
                model=fallback.model,
                base_url=fallback.base_url,
                api_key=fallback.api_key.get_secret_value() if fallback.api_key is not None else None,
            )
            for fallback in settings.fallback_models
        ]
        return cls([primary, *fallbacks])

    @property
    def model(self) -> str:
        return self._clients[0].model

    async def complete(
        self, messages: list[dict[str, str]], schema: dict[str, Any], schema_name: str = "review"
    ) -> ModelReply:
        failures: list[str] = []
        start = self._first
        for position in range(start, len(self._clients)):
            client = self._clients[position]
            try:
                reply = await client.complete(messages, schema, schema_name)
            except ModelError as exc:
                if not moves_on(exc) or position == len(self._clients) - 1:
                    if failures:
                        raise type(exc)("; then ".join([*failures, str(exc)]), status=exc.status) from exc
                    raise
                failures.append(f"{client.model}: {exc}")
                continue
            # No await between reading and writing it: concurrent requests cannot interleave here.
            self._first = max(self._first, position)
            return reply
        raise AssertionError("unreachable: the last client raises or answers")

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()

    async def __aenter__(self) -> ModelChain:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
