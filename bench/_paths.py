"""Where the repository's data lives, and the test suite's fake server and webhook abuse helpers made importable.

``tests/fake_openai.py`` and ``tests/webhook_abuse.py`` are top-level modules of the test suite,
not part of the package, so the benchmarks put ``tests/`` on ``sys.path`` here, in this one
place, and see them through the small protocols :class:`FakeServer` and :class:`WebhookAbuse`
(``mypy bench`` alone does not see ``tests/``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
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


class AbusedServer(Protocol):
    """The part of ``webhook_abuse.WebServer`` the benchmarks use."""

    @property
    def port(self) -> int: ...
    def kib(self, field: str) -> int: ...
    def deliver(self, number: int = ...) -> int: ...


class WebhookAbuse(Protocol):
    """The ``tests/webhook_abuse.py`` module: a ``reviewbot serve`` process and clients that misbehave against it."""

    FORGED: str

    def web_server(
        self, workdir: Path, secret: str, name: str = ..., **settings: str
    ) -> AbstractContextManager[AbusedServer]: ...
    def signed_delivery(self, secret: str, number: int) -> tuple[bytes, dict[str, str]]: ...
    def request_head(self, port: int, *, length: int | None, signature: str | None, delivery: str = ...) -> bytes: ...

    UPLOADERS: tuple[str, ...]

    async def upload(self, port: int, size: int, signature: str | None, *, source: str = ...) -> bytes: ...
    async def stall(self, port: int, length: int, sent: int, signature: str | None, *, source: str = ...) -> bytes: ...
    async def until_closed(self, port: int, first: bytes, limit: float) -> tuple[float, bytes]: ...


def _test_module(name: str) -> ModuleType:
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    return importlib.import_module(name)


def fake_openai() -> ModuleType:
    """The ``tests/fake_openai.py`` module (its ``Reply`` builds answers)."""
    return _test_module("fake_openai")


def webhook_abuse() -> WebhookAbuse:
    return cast("WebhookAbuse", _test_module("webhook_abuse"))


def new_fake_server() -> FakeServer:
    return cast("FakeServer", fake_openai().FakeOpenAI())
