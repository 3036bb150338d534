"""Refusals a stranger can cause at will are logged at most once a minute, the rest counted:
as plain data, with a clock the test moves."""

from __future__ import annotations

import logging

import pytest

from reviewbot.service.refusal_log import RefusalLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_line_a_minute_and_the_next_line_says_how_many_were_left_out(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    refusals = RefusalLog(logging.getLogger("test.refusals"), every=60, clock=clock)
    with caplog.at_level(logging.WARNING, logger="test.refusals"):
        refusals.log("%s refused", "a")
        for _ in range(1000):  # a stranger rotating addresses: nothing more is logged, or kept
            clock.now += 0.01
            refusals.log("%s refused", "b")
        clock.now = 1060.0
        refusals.log("%s refused", "c")
        clock.now = 1200.0
        refusals.log("%s refused", "d")
    assert [record.getMessage() for record in caplog.records] == [
        "a refused",
        "c refused (and 1000 more such refusals since the last line, counted but not logged: one line a minute)",
        "d refused",
    ]
    assert all(record.levelno == logging.WARNING for record in caplog.records)


def test_the_interval_is_named_in_seconds_when_it_is_no_minute(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    refusals = RefusalLog(logging.getLogger("test.refusals"), every=5, clock=clock)
    with caplog.at_level(logging.WARNING, logger="test.refusals"):
        refusals.log("refused")
        refusals.log("refused")
        clock.now += 5
        refusals.log("refused")
    assert caplog.records[-1].getMessage() == (
        "refused (and 1 more such refusal since the last line, counted but not logged: one line every 5 s)"
    )


def test_a_log_of_its_own_level_names_what_it_left_out(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    duplicates = RefusalLog(logging.getLogger("test.refusals"), clock=clock, level=logging.INFO, kind="duplicate")
    with caplog.at_level(logging.INFO, logger="test.refusals"):
        duplicates.log("a")
        duplicates.log("b")
        clock.now += 60
        duplicates.log("c")
    assert [(record.levelno, record.getMessage()) for record in caplog.records] == [
        (logging.INFO, "a"),
        (logging.INFO, "c (and 1 more such duplicate since the last line, counted but not logged: one line a minute)"),
    ]
