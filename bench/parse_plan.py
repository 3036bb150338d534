"""Parse + filter + plan of a ~50,000-changed-line diff, against ``unidiff`` parsing it alone.

Target: reviewbot's pipeline (``parse_diff`` of the bytes, ``select_files``, ``make_plan`` with a
32,768-token window and 4,096 answer tokens) takes at most 2.0× the time ``unidiff.PatchSet``
takes on the same text. Times are the best of several runs, interleaved; peak memory is
measured once each with ``tracemalloc``. When the ratio is over target, a cProfile of the
pipeline says where the time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import time
import tracemalloc
from collections.abc import Callable

from unidiff.patch import PatchSet

from _report import Result, emit
from _synth import count_changed, synth_diff
from reviewbot.engine.diff import parse_diff
from reviewbot.engine.filters import FilterRules, select_files
from reviewbot.engine.plan import Budget, Plan, PromptOptions, make_plan
from reviewbot.engine.prompt import ReviewContext

TARGET = 2.0
FILES = 400
CHANGED_LINES = 50_000
SEED = 2026
BUDGET = Budget(context_window=32_768, max_output_tokens=4_096)
OPTIONS = PromptOptions(ReviewContext())


def unidiff_alone(text: str) -> object:
    return PatchSet(io.StringIO(text))


def pipeline(data: bytes) -> Plan:
    diff = parse_diff(data)
    reviewable, _skipped = select_files(diff, FilterRules())
    return make_plan(reviewable, BUDGET, OPTIONS)


def timed(work: Callable[[], object]) -> float:
    gc.collect()
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def peak_mib(work: Callable[[], object]) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def without_gc(work: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        gc.disable()
        try:
            return work()
        finally:
            gc.enable()

    return run


def breakdown(text: str, data: bytes, runs: int) -> list[tuple[str, float]]:
    """Where the pipeline's time goes: each part on its own, best of ``runs``, cyclic GC apart."""

    def best(work: Callable[[], object]) -> float:
        return min(timed(work) for _ in range(runs))

    unidiff_part = best(without_gc(lambda: unidiff_alone(text)))
    parse_part = best(without_gc(lambda: parse_diff(data)))
    with_gc = best(lambda: pipeline(data))
    without = best(without_gc(lambda: pipeline(data)))
    diff = parse_diff(data)
    reviewable, _ = select_files(diff, FilterRules())
    return [
        ("unidiff.PatchSet (inside parse_diff)", unidiff_part),
        ("conversion to reviewbot's Diff", parse_part - unidiff_part),
        ("select_files", best(without_gc(lambda: select_files(diff, FilterRules())))),
        ("make_plan", best(without_gc(lambda: make_plan(reviewable, BUDGET, OPTIONS)))),
        ("cyclic GC while the pipeline runs", with_gc - without),
        ("whole pipeline", with_gc),
    ]


def profile(data: bytes, top: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    pipeline(data)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    print("\ncProfile of the pipeline, by own time (profiling slows every call; compare shares, not seconds):")
    print("\n".join(line for line in out.getvalue().splitlines()[4:] if line.strip()))
    print(
        "note: DiffLine() is a NamedTuple: its generated __new__ shows as <lambda> plus the built-in __new__, "
        "and cyclic GC runs triggered by allocation are charged to that built-in"
    )


def describe(text: str, data: bytes) -> None:
    plan = pipeline(data)
    print(
        f"synthetic diff: {FILES} files, {count_changed(text):,} changed lines, {text.count(chr(10)):,} lines, "
        f"{len(data) / 2**20:.1f} MiB; plan: {len(plan.requests)} requests, {plan.estimated_tokens:,} tokens, "
        f"{len(parse_diff(data).files)} files"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each side (best is kept)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile even within target")
    args = parser.parse_args()
    assert args.runs >= 5

    text = synth_diff(files=FILES, changed_lines=CHANGED_LINES, seed=SEED)
    data = text.encode()
    describe(text, data)  # its objects are gone before the timing: nothing else big is alive

    base_times: list[float] = []
    ours_times: list[float] = []
    for _ in range(args.runs):  # interleaved, so drift of the machine hits both sides alike
        base_times.append(timed(lambda: unidiff_alone(text)))
        ours_times.append(timed(lambda: pipeline(data)))
    base, ours = min(base_times), min(ours_times)
    ratio = ours / base

    base_mib = peak_mib(lambda: unidiff_alone(text))
    ours_mib = peak_mib(lambda: pipeline(data))
    print(f"\nbest of {args.runs} runs:")
    print(f"  unidiff.PatchSet alone          {base * 1000:8.1f} ms   peak {base_mib:6.1f} MiB")
    print(f"  parse_diff+select_files+plan    {ours * 1000:8.1f} ms   peak {ours_mib:6.1f} MiB")
    print(f"  ratio                           {ratio:8.2f}×   memory {ours_mib / base_mib:.2f}×")

    print(f"\nwhere the pipeline's time goes (best of {args.runs // 2 + 1}; the parts are timed with GC off):")
    parts = breakdown(text, data, args.runs // 2 + 1)
    whole = parts[-1][1]
    for name, seconds in parts:
        print(f"  {name:<38} {seconds * 1000:7.1f} ms  {seconds / whole:6.1%}  {seconds / base:5.2f}× unidiff")

    if ratio > TARGET or args.profile:
        profile(data, top=18)
    emit(
        Result("parse_plan", "pipeline / unidiff time", ratio, TARGET, f"{ours * 1000:.0f} ms vs {base * 1000:.0f} ms")
    )


if __name__ == "__main__":
    main()
