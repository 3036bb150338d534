"""The one line each benchmark ends with, which ``bench/run.py`` reads back for its summary."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

PREFIX = "BENCH-RESULT "


@dataclass(frozen=True, slots=True)
class Result:
    name: str
    metric: str  # what the figure is, e.g. "pipeline / unidiff time"
    figure: float
    target: float  # the figure must be at most this
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.figure <= self.target

    def line(self) -> str:
        return PREFIX + json.dumps(asdict(self))


def emit(result: Result) -> None:
    verdict = "within target" if result.ok else "OVER TARGET"
    print(f"\n{result.metric}: {result.figure:.3f}× (target ≤ {result.target:.2f}×) — {verdict}")
    print(result.line(), flush=True)


def parse(line: str) -> Result | None:
    if not line.startswith(PREFIX):
        return None
    return Result(**json.loads(line[len(PREFIX) :]))


def best_of(runs: int, work: Callable[[], object]) -> float:
    """The fastest of ``runs`` timed calls, in seconds (the least disturbed by the machine)."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best
