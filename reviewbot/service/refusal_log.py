"""Log lines for refusals that anyone on the internet can cause at will, at most one an interval.

A line per refused request would let a stranger fill the log (and the disk under it) at the rate
it can send requests: a peer the allowlist refuses, or a captured signed delivery sent again. A
:class:`RefusalLog` writes the first refusal of its kind, then only counts the others until the
interval has passed, and says in its next line how many it left out. It keeps two numbers, not a
record per address, so a stranger rotating addresses cannot make it grow. Every refusal is still
counted in the metrics.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Final

#: How long after a line the next one of its kind may be written.
EVERY_SECONDS: Final = 60.0


class RefusalLog:
    """Lines for one kind of refusal (``kind``, a noun its line names the ones left out by), at ``level``,
    at most one every ``every`` seconds.

    Used by one thread at a time (the event loop's, or the webhook's one writer), so it needs no lock."""

    __slots__ = ("_clock", "_every", "_kind", "_level", "_log", "_next", "_unlogged")

    def __init__(
        self,
        log: logging.Logger,
        every: float = EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        *,
        level: int = logging.WARNING,
        kind: str = "refusal",
    ) -> None:
        self._log = log
        self._every = every
        self._clock = clock
        self._level = level
        self._kind = kind
        self._next = -math.inf  # when the next line may be written
        self._unlogged = 0  # refusals since the last line

    def log(self, message: str, *args: object) -> None:
        """Log ``message % args``, unless a line was written less than the interval ago: then only count it."""
        now = self._clock()
        if now < self._next:
            self._unlogged += 1
            return
        self._next = now + self._every
        if self._unlogged:
            message += f" (and %d more such {self._kind}{'s' if self._unlogged > 1 else ''} since the last line, "
            message += f"counted but not logged: {self._rate()})"
            args = (*args, self._unlogged)
            self._unlogged = 0
        self._log.log(self._level, message, *args)

    def _rate(self) -> str:
        return "one line a minute" if self._every == 60 else f"one line every {self._every:g} s"
