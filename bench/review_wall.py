"""Wall time of a whole review against the fastest schedule its concurrency limit allows.

A synthetic 150-file, ~6,000-changed-line diff is planned for an 8,192-token window (1,024
answer tokens) and reviewed with ``execute`` through the real ``ModelClient`` (concurrency 4)
against the fake OpenAI server in this process, over loopback. The server takes 1.0 s per
request plus 50 output tokens a second, and answers each request with one finding of about
50 tokens on a line of that request. With request i taking t_i on the server, the ideal is the
makespan of a greedy list schedule of the requests, in submission order, on 4 lanes (each
request starts on the first lane to come free); the simple bound max(max t_i, Σ t_i / 4) is
printed beside it. Target: wall time (prepare + execute) at most 1.25× the greedy makespan.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from _paths import fake_openai, new_fake_server
from _report import Result, emit
from _synth import count_changed, synth_diff
from reviewbot.engine.diff import parse_diff
from reviewbot.engine.filters import FilterRules
from reviewbot.engine.llm import ModelClient
from reviewbot.engine.price_layers import Prices
from reviewbot.engine.result import ReviewResult
from reviewbot.engine.review import ReviewOptions, execute, prepare

TARGET = 1.25
FILES = 150
CHANGED_LINES = 6_000
SEED = 150
CONCURRENCY = 4
SECONDS_PER_REQUEST = 1.0
OUTPUT_TOKENS_PER_SECOND = 50.0
ANSWER_TOKENS = 50
OPTIONS = ReviewOptions(
    model="fake-model",
    context_window=8_192,
    max_output_tokens=1_024,
    rules=FilterRules(),
    prices=Prices(),
)
_FILE = re.compile(r"^File: (\S+) \(", re.MULTILINE)
_LINE = re.compile(r"^(L?)(\d+) ([+-])\s*(\S.*)$", re.MULTILINE)


def served_tokens(content: str) -> int:
    """Completion tokens as the fake server counts them (about four characters a token)."""
    return max(1, (len(content) + 3) // 4) if content else 0


class Responder:
    """One finding of about ``ANSWER_TOKENS`` tokens on the first changed line of a request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.tokens: list[int] = []  # in the order the server answered

    def __call__(self, body: dict[str, Any]) -> Any:
        user = body["messages"][-1]["content"]
        file, line = _FILE.search(user), None
        if file is not None:
            line = _LINE.search(user, file.end())
        if file is None or line is None:
            content = '{"findings": []}'
        else:
            finding = {
                "path": file.group(1),
                "line": int(line.group(2)),
                "start_line": None,
                "side": "LEFT" if line.group(1) else "RIGHT",
                "severity": "low",
                "category": "bug",
                "title": "Magic value",
                "body": "",
                "quote": line.group(4)[:12].strip(),  # a part of the line is enough
                "suggestion": None,
            }
            bare = len(json.dumps({"findings": [finding]}))
            finding["body"] = "Name it." + "." * max(0, 4 * ANSWER_TOKENS - bare - 8)
            content = json.dumps({"findings": [finding]})
        with self._lock:
            self.tokens.append(served_tokens(content))
        return fake_openai().Reply.text(content)


def greedy_makespan(durations: list[float], lanes: int) -> float:
    """Each job, in order, starts on the lane that comes free first."""
    free = [0.0] * lanes
    for duration in durations:
        heapq.heappush(free, heapq.heappop(free) + duration)
    return max(free)


@dataclass(frozen=True, slots=True)
class Run:
    result: ReviewResult
    requests: int
    started: float  # time.monotonic(), the clock the server stamps requests with
    prepare_seconds: float
    wall: float


async def review(base_url: str, text: str) -> Run:
    async with ModelClient(
        base_url=base_url,
        api_key="bench-key",
        model=OPTIONS.model,
        timeout=60.0,
        max_retries=0,
        concurrency=CONCURRENCY,
        max_output_tokens=OPTIONS.max_output_tokens,
        temperature=0.1,
        disable_thinking=True,
    ) as client:
        started, started_monotonic = time.perf_counter(), time.monotonic()
        prepared = prepare(parse_diff(text), OPTIONS)
        planned = time.perf_counter()
        result = await execute(prepared, client)
        finished = time.perf_counter()
    return Run(result, len(prepared.plan.requests), started_monotonic, planned - started, finished - started)


def main() -> None:
    text = synth_diff(files=FILES, changed_lines=CHANGED_LINES, seed=SEED)
    server = new_fake_server()
    responder = Responder()
    server.start()
    try:
        server.set_latency(SECONDS_PER_REQUEST, OUTPUT_TOKENS_PER_SECOND)
        server.set_default(responder)
        run = asyncio.run(review(server.base_url, text))
        arrivals = [request.received_at - run.started for request in server.requests]
        in_flight = server.max_in_flight
    finally:
        server.stop()

    result, planned, wall = run.result, run.requests, run.wall
    assert not result.failed, result.failed
    assert len(arrivals) == planned == len(responder.tokens), "a request was repeated or lost"
    durations = [SECONDS_PER_REQUEST + tokens / OUTPUT_TOKENS_PER_SECOND for tokens in responder.tokens]
    greedy = greedy_makespan(durations, CONCURRENCY)
    bound = max(max(durations), sum(durations) / CONCURRENCY)
    ratio = wall / greedy
    print(
        f"synthetic diff: {FILES} files, {count_changed(text):,} changed lines; window {OPTIONS.context_window:,} "
        f"tokens ({OPTIONS.max_output_tokens:,} for the answer)"
    )
    print(f"requests N                 {planned}  (most in flight on the server: {in_flight})")
    print(
        f"server time per request    {min(durations):.2f}–{max(durations):.2f} s "
        f"({min(responder.tokens)}–{max(responder.tokens)} output tokens)"
    )
    print(f"ideal, simple bound        {bound:6.2f} s   max(max t_i, Σ t_i / {CONCURRENCY})")
    print(f"ideal, greedy list schedule{greedy:6.2f} s   in submission order on {CONCURRENCY} lanes")
    print(f"wall (prepare + execute)   {wall:6.2f} s   of which prepare {run.prepare_seconds * 1000:.0f} ms")
    print(
        f"first request reached the server {min(arrivals) * 1000:.0f} ms after the start, "
        f"the last {max(arrivals):.2f} s after it"
    )
    print(
        f"findings {len(result.findings)}, not reviewed {len(result.not_reviewed)}, "
        f"usage {result.usage.input_tokens:,} in + {result.usage.output_tokens:,} out"
    )
    print(f"ratio wall / greedy        {ratio:6.3f}×   (wall / simple bound {wall / bound:.3f}×)")
    emit(Result("review_wall", "wall / greedy-schedule makespan", ratio, TARGET, f"N={planned}, {wall:.2f} s"))


if __name__ == "__main__":
    main()
