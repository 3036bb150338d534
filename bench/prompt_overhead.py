"""Prompt tokens planned for a review, against the tokens of the diff text they review.

Over the fixture diffs (``tests/data/diffs``, ``tests/data/samples``) with more than 200 changed
lines: the estimated prompt tokens of every planned request (default options, a 32,768-token
window) divided by the estimated tokens of the raw diff sections, ``diff --git`` header through
the last hunk, of the files the filters kept. Skipped files (lock files, deletions, binaries)
are in neither side, so they cannot flatter the ratio; the ratio against the whole diff text is
printed beside it. Target: at most 1.10 over all the diffs together.

The same diffs are planned again for small context windows (8,192 and 6,000 tokens) with the
answer reserve reviewbot picks for them (a quarter of the window): more requests, each
repeating the instructions. Target at 8k: at most 1.35.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from _paths import FIXTURE_DIFFS, SAMPLE_DIFFS
from _report import Result, emit
from _synth import count_changed
from reviewbot.engine.diff import decode, parse_diff
from reviewbot.engine.filters import FilterRules
from reviewbot.engine.price_layers import Prices
from reviewbot.engine.prompt import ReviewContext, build_messages
from reviewbot.engine.review import ReviewOptions, prepare
from reviewbot.engine.tokens import estimate_messages, estimate_tokens
from reviewbot.settings import answer_reserve

TARGET = 1.10
SMALL_WINDOW_TARGET = 1.35
MIN_CHANGED = 200
OPTIONS = ReviewOptions(
    model="qwen3-coder-30b",
    context_window=32_768,
    max_output_tokens=answer_reserve(32_768),
    rules=FilterRules(),
    prices=Prices(),
)
SMALL_WINDOWS = (8_192, 6_000)
_FILE_START = re.compile(r"^diff --git ", re.MULTILINE)  # "^" after "\n" only, as git splits lines


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    changed: int
    kept: int
    files: int
    requests: int
    prompt_tokens: int
    kept_tokens: int
    whole_tokens: int


def sections(text: str) -> list[str]:
    """The diff text of each file, in order: from its ``diff --git`` line up to the next one."""
    starts = [match.start() for match in _FILE_START.finditer(text)]
    return [text[start:end] for start, end in zip(starts, [*starts[1:], len(text)], strict=True)]


def measure(path: Path, options: ReviewOptions = OPTIONS) -> Row:
    text = decode(path.read_bytes())
    diff = parse_diff(text)
    prepared = prepare(diff, options)
    parts = sections(text)
    assert len(parts) == len(diff.files), f"{path.name}: {len(parts)} sections for {len(diff.files)} files"
    kept_ids = {id(file) for file in prepared.reviewable}
    kept_text = "".join(part for part, file in zip(parts, diff.files, strict=True) if id(file) in kept_ids)
    return Row(
        name=path.stem,
        changed=count_changed(text),
        kept=len(prepared.reviewable),
        files=len(diff.files),
        requests=len(prepared.plan.requests),
        prompt_tokens=sum(request.estimated_tokens for request in prepared.plan.requests),
        kept_tokens=estimate_tokens(kept_text) if kept_text else 0,
        whole_tokens=estimate_tokens(text),
    )


def ratio(numerator: int, denominator: int) -> str:
    return f"{numerator / denominator:6.3f}" if denominator else "     —"


def main() -> None:
    paths = sorted([*FIXTURE_DIFFS.glob("*.diff"), *SAMPLE_DIFFS.glob("*.diff")])
    rows = [row for row in map(measure, paths) if row.changed > MIN_CHANGED]
    fixed = estimate_messages(
        build_messages(context=ReviewContext(), sections=[], include_nits=False, extra_instructions="")
    )
    print(f"{len(rows)} of {len(paths)} fixture diffs have more than {MIN_CHANGED} changed lines\n")
    header = f"{'diff':<24} {'changed':>7} {'kept':>7} {'reqs':>4} {'prompt tok':>10} {'kept tok':>9} "
    print(header + f"{'÷ kept':>7} {'÷ whole':>7}")
    for row in rows:
        print(
            f"{row.name:<24} {row.changed:>7,} {f'{row.kept}/{row.files}':>7} {row.requests:>4} "
            f"{row.prompt_tokens:>10,} {row.kept_tokens:>9,} {ratio(row.prompt_tokens, row.kept_tokens):>7} "
            f"{ratio(row.prompt_tokens, row.whole_tokens):>7}"
        )
    prompt = sum(row.prompt_tokens for row in rows)
    kept = sum(row.kept_tokens for row in rows)
    whole = sum(row.whole_tokens for row in rows)
    requests = sum(row.requests for row in rows)
    print(
        f"{'total':<24} {sum(row.changed for row in rows):>7,} {'':>7} {requests:>4} {prompt:>10,} {kept:>9,} "
        f"{ratio(prompt, kept):>7} {ratio(prompt, whole):>7}"
    )
    print(
        f"\nfixed part of every request (instructions, fences, message overhead): {fixed:,} tokens; "
        f"{requests} requests spend {requests * fixed:,} of the {prompt:,}; the diff as rendered "
        f"for the model costs {(prompt - requests * fixed) / kept:.3f}× its raw text"
    )
    small = [small_window(paths, window) for window in SMALL_WINDOWS]
    emit(Result("prompt_overhead", "prompt tokens / kept diff tokens", prompt / kept, TARGET))
    for window, figure in zip(SMALL_WINDOWS, small, strict=True):
        if window == SMALL_WINDOWS[0]:
            emit(Result("prompt_overhead_8k", f"the same at a {window:,}-token window", figure, SMALL_WINDOW_TARGET))


def small_window(paths: list[Path], window: int) -> float:
    """Plan the diffs for a small window; print its requests and overhead, and return the ratio."""
    options = dataclasses.replace(OPTIONS, context_window=window, max_output_tokens=answer_reserve(window))
    rows = [row for row in (measure(path, options) for path in paths) if row.changed > MIN_CHANGED]
    prompt = sum(row.prompt_tokens for row in rows)
    kept = sum(row.kept_tokens for row in rows)
    requests = sum(row.requests for row in rows)
    print(
        f"at a {window:,}-token window ({options.max_output_tokens:,} kept for the answer): {requests} requests, "
        f"{prompt:,} prompt tokens, {ratio(prompt, kept).strip()}× the kept diff"
    )
    return prompt / kept


if __name__ == "__main__":
    main()
