"""Where the repository's data lives, and the test suite's fake server made importable.

``tests/fake_openai.py`` is a top-level module of the test suite, not part of the package, so
the benchmarks put ``tests/`` on ``sys.path`` here, in this one place, and see the server
through the small :class:`FakeServer` protocol (``mypy bench`` alone does not see ``tests/``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, cast

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
FIXTURE_DIFFS = TESTS / "data" / "diffs"
SAMPLE_DIFFS = TESTS / "data" / "samples"


class FakeServer(Protocol):
    """The part of ``fake_openai.FakeOpenAI`` the benchmarks use."""

    @property
    def base_url(self) -> str: ...
    @property
    def max_in_flight(self) -> int: ...
    @property
    def requests(self) -> list[Any]: ...
    def start(self, timeout: float = ...) -> None: ...
    def stop(self, timeout: float = ...) -> None: ...
    def set_latency(self, seconds_per_request: float = ..., output_tokens_per_second: float | None = ...) -> None: ...
    def set_default(self, responder: Callable[[dict[str, Any]], Any]) -> None: ...


def fake_openai() -> ModuleType:
    """The ``tests/fake_openai.py`` module (its ``Reply`` builds answers)."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    return importlib.import_module("fake_openai")


def new_fake_server() -> FakeServer:
    return cast("FakeServer", fake_openai().FakeOpenAI())
