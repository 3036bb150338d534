"""Token usage of model requests, as the endpoint reported it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens (and, where the endpoint says, dollars) spent by one or more requests.

    ``cost_usd`` is the endpoint's own figure (OpenRouter sends ``usage.cost``); None when it
    sent none. A sum of usages has a cost only if every part had one. ``cached_tokens`` are the
    input tokens the provider served from its prompt cache: a part of ``input_tokens``, as
    OpenAI counts them, often billed at a lower rate.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    requests: int = 0
    cost_usd: float | None = None
    cached_tokens: int = 0
    # Requests whose token counts the endpoint did not report: they are estimated from the text,
    # so no price can turn them into a cost (only the endpoint's own figure can).
    estimated_requests: int = 0

    @property
    def estimated(self) -> bool:
        return self.estimated_requests > 0

    def __add__(self, other: Usage) -> Usage:
        if self.requests == 0:
            cost = other.cost_usd
        elif other.requests == 0:
            cost = self.cost_usd
        elif self.cost_usd is None or other.cost_usd is None:
            cost = None
        else:
            cost = self.cost_usd + other.cost_usd
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            requests=self.requests + other.requests,
            cost_usd=cost,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            estimated_requests=self.estimated_requests + other.estimated_requests,
        )
