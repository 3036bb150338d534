"""What an eval run says on a terminal: the question before it pays, and a progress line."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

from reviewbot.engine.pricing import format_usd
from reviewbot.eval.plan import RunPlan
from reviewbot.render.text import plural


def confirm(plan: RunPlan, stream: IO[str], answer: Callable[[], str]) -> bool:
    """Ask before a run sends anything; True when there is nothing to send."""
    to_send = sum(model.to_send for model in plan.models)
    if to_send == 0:
        return True
    cost = f"about {format_usd(plan.usd)}" if plan.usd is not None else "an unknown cost (a price is unknown)"
    stream.write(f"reviewbot: send {plural(to_send, 'request')} for {cost}? [y/N] ")
    stream.flush()
    return answer().strip().lower() in ("y", "yes")


class ProgressLine:
    """One line on the terminal: cases done per model."""

    def __init__(self, stream: IO[str], plan: RunPlan) -> None:
        self._stream = stream
        self._done = {model.model.label: 0 for model in plan.models}
        self._total = plan.cases

    def update(self, label: str, done: int, total: int) -> None:
        self._done[label] = done
        parts = ", ".join(f"{name} {count}/{self._total}" for name, count in self._done.items())
        self._stream.write(f"\rreviewbot eval: {parts} cases…")
        self._stream.flush()

    def clear(self) -> None:
        self._stream.write("\r\033[K")
        self._stream.flush()
