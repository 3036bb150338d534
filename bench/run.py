"""Run every benchmark, each in its own interpreter, and print a summary table.

    python bench/run.py                  # all of them
    python bench/run.py parse_plan       # only the named ones

Exits 1 when a benchmark fails or a figure is over its target. A benchmark may end with more than
one result line (one per figure); each gets its own row.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from _report import Result, parse

BENCH = Path(__file__).resolve().parent
BENCHMARKS = (
    "parse_plan",
    "prompt_overhead",
    "review_wall",
    "webhook_ack",
    "queue_throughput",
    "intake_abuse",
    "retention",
)


def run(name: str) -> tuple[list[Result], float]:
    print(f"=== {name}", flush=True)
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, str(BENCH / f"{name}.py")], stdout=subprocess.PIPE, text=True, cwd=BENCH.parent
    )
    assert process.stdout is not None
    results: list[Result] = []
    for line in process.stdout:
        parsed = parse(line)
        if parsed is None:
            print(line, end="", flush=True)
        else:
            results.append(parsed)
    code = process.wait()
    seconds = time.perf_counter() - started
    if code != 0:
        print(f"{name} exited with status {code}", flush=True)
        results = []
    print(flush=True)
    return results, seconds


def main() -> int:
    names = sys.argv[1:] or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    outcomes = [(name, *run(name)) for name in names]
    print(f"{'benchmark':<16} {'figure':<34} {'value':>8} {'target':>8} {'time':>7}  verdict")
    for name, results, seconds in outcomes:
        if not results:
            print(f"{name:<16} {'—':<34} {'—':>8} {'—':>8} {seconds:6.1f}s  FAILED")
            continue
        for result in results:
            verdict = "ok" if result.ok else "OVER TARGET"
            print(
                f"{name:<16} {result.metric:<34} {result.figure:7.3f}× {result.target:7.2f}× {seconds:6.1f}s  {verdict}"
                + (f"  ({result.note})" if result.note else "")
            )
    return 0 if all(results and all(result.ok for result in results) for _, results, _ in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
