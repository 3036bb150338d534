"""Statements over many rows at once: marker lists, chunks within the parameter limit, ``IN`` lists."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator, Sequence
from typing import Any, Final, TypeVar

from reviewbot.store.database import Row, Tx

_T = TypeVar("_T")

#: Parameters per statement at most: SQLite before 3.32 allows 999.
MAX_PARAMS: Final = 999


@functools.cache
def marks(count: int, width: int = 1) -> str:
    """``?, ?, ?`` (``count`` markers), or with ``width`` > 1 ``(?, ?), (?, ?), …`` (``count`` rows)."""
    if width == 1:
        return ", ".join(["?"] * count)
    return ", ".join([f"({marks(width)})"] * count)


def chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def padded(values: Sequence[_T]) -> Sequence[_T]:
    """``values`` (not empty) padded to a power of two with its last one, for an ``IN (…)`` list:
    then a few statements serve every group size, and SQLite prepares each once."""
    size = 1 << (len(values) - 1).bit_length()
    return values if size == len(values) else [*values, *[values[-1]] * (size - len(values))]


def select_in(tx: Tx, sql: str, values: Sequence[Any]) -> Iterator[Row]:
    """The rows of ``sql``, whose ``{}`` is filled with one marker per value (in chunks)."""
    for chunk in chunks(values, 512):
        filled = padded(chunk)
        yield from tx.all(sql.format(marks(len(filled))), tuple(filled))


def insert_rows(tx: Tx, insert: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """``insert`` (``INSERT INTO t (…) VALUES``) with ``rows``, as many to a statement as fit."""
    if not rows:
        return
    width = len(rows[0])
    for chunk in chunks(rows, MAX_PARAMS // width):
        tx.execute(f"{insert} {marks(len(chunk), width)}", tuple(itertools.chain.from_iterable(chunk)))
