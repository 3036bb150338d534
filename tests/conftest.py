"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fake_openai import FakeOpenAI


@pytest.fixture(scope="session")
def openai_server() -> Iterator[FakeOpenAI]:
    """One fake OpenAI-compatible server on loopback for the whole session."""
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake_openai(openai_server: FakeOpenAI) -> FakeOpenAI:
    """The session's fake server with an empty script and no recorded requests."""
    openai_server.reset()
    return openai_server
