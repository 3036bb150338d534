"""The hard cap on what a whole eval run spends (``--max-cost``).

Before each request that is not in the cache, its worst case is reserved: its estimated prompt
tokens and the full answer limit at the model's prices. A request starts only while what was
spent, what is reserved for the requests in flight and its own worst case stay within the cap;
otherwise it waits for those in flight, and when none is left the run stops. So the run never
spends more than the cap, whatever the models answer.
"""

from __future__ import annotations

import asyncio

from reviewbot.engine.pricing import format_usd
from reviewbot.errors import ReviewbotError


class CostCapReached(ReviewbotError):
    """The next request could take the run past ``--max-cost``; nothing more is sent."""


class CostGuard:
    """Dollars spent and reserved by one run, against its cap (None: no cap, only a tally)."""

    def __init__(self, limit: float | None) -> None:
        self.limit = limit
        self.spent = 0.0
        self._reserved = 0.0
        self._in_flight = 0
        self._changed = asyncio.Condition()

    async def reserve(self, worst_case: float) -> None:
        """Wait until ``worst_case`` dollars fit under the cap, then hold them; raise
        :class:`CostCapReached` when they cannot fit even with nothing in flight."""
        if self.limit is None:
            return
        async with self._changed:
            while self.spent + self._reserved + worst_case > self.limit:
                if self._in_flight == 0:
                    raise CostCapReached(
                        f"the run stopped at --max-cost {format_usd(self.limit)}: {format_usd(self.spent)} spent, "
                        f"and the next request could cost up to {format_usd(worst_case)}; the answers so far "
                        "are cached, so a rerun with a higher cap pays only for the rest"
                    )
                await self._changed.wait()
            self._reserved += worst_case
            self._in_flight += 1

    async def settle(self, worst_case: float, spent: float) -> None:
        """Release a reservation and count what the request really cost."""
        async with self._changed:
            if self.limit is not None:
                self._reserved -= worst_case
                self._in_flight -= 1
            self.spent += spent
            self._changed.notify_all()
