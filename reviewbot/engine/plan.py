"""Pack reviewable hunks into model requests that fit the context window.

Every reviewable line goes into exactly one request, or is listed as not reviewed with the
reason. A file's hunks stay together where they fit; a hunk that alone exceeds the budget is
split on line boundaries. Token counts here are estimates (see :mod:`reviewbot.engine.tokens`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reviewbot.engine.diff import DiffFile, DiffLine, Hunk
from reviewbot.engine.prompt import (
    ReviewContext,
    build_messages,
    render_context,
    render_file_header,
    render_hunk_header,
    render_lines,
)
from reviewbot.engine.result import NotReviewed
from reviewbot.engine.tokens import estimate_messages, estimate_tokens
from reviewbot.errors import ConfigError

# Room kept free in every request for the estimate being off; local servers (Ollama's default
# context, llama.cpp) truncate silently instead of failing, so we would rather send more requests.
SAFETY_MARGIN = 0.10
# The smallest useful share of a request: below this a split hunk's parts are all header.
_MIN_CHUNK_TOKENS = 64


@dataclass(frozen=True, slots=True)
class Chunk:
    """A hunk, or a line-boundary slice of one, as it goes into a request."""

    file: DiffFile
    hunk: Hunk
    lines: tuple[DiffLine, ...]
    part: int
    parts: int
    text: str
    tokens: int

    @property
    def first_line(self) -> int:
        return _display_number(self.lines[0])

    @property
    def last_line(self) -> int:
        return _display_number(self.lines[-1])


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    index: int
    chunks: tuple[Chunk, ...]
    messages: tuple[dict[str, str], ...]
    estimated_tokens: int

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(chunk.file.path for chunk in self.chunks))


@dataclass(frozen=True, slots=True)
class Cap:
    """A limit on the whole review, measured per request from its estimated prompt tokens."""

    limit: float
    measure: Callable[[int], float]
    reason: str  # how a person says it was hit: "the cost cap of $0.05 (REVIEWBOT_MAX_COST)"


@dataclass(frozen=True, slots=True)
class Budget:
    """Limits a plan must respect."""

    context_window: int
    max_output_tokens: int
    caps: tuple[Cap, ...] = ()

    @property
    def per_request(self) -> int:
        return int((self.context_window - self.max_output_tokens) * (1 - SAFETY_MARGIN))


@dataclass(frozen=True, slots=True)
class Plan:
    requests: tuple[PlannedRequest, ...]
    not_reviewed: tuple[NotReviewed, ...]
    budget: Budget
    prompt: PromptOptions | None = None  # how the requests were worded, to split one again

    @property
    def estimated_tokens(self) -> int:
        return sum(request.estimated_tokens for request in self.requests)


@dataclass(frozen=True, slots=True)
class PromptOptions:
    context: ReviewContext
    include_nits: bool = False
    extra_instructions: str = ""
    function_context: bool = False  # some hunks carry context lines (REVIEWBOT_CONTEXT=function)


def make_plan(files: Sequence[DiffFile], budget: Budget, options: PromptOptions) -> Plan:
    """Pack ``files`` into requests under ``budget``."""
    overhead = estimate_messages(_messages(options, []))
    room = budget.per_request - overhead
    if room < _MIN_CHUNK_TOKENS:
        raise ConfigError(
            f"the context window of {budget.context_window:,} tokens leaves no room for code after "
            f"{budget.max_output_tokens:,} answer tokens and {overhead:,} tokens of instructions; "
            "raise REVIEWBOT_CONTEXT_WINDOW or lower REVIEWBOT_MAX_OUTPUT_TOKENS"
        )
    groups = _pack(files, room)
    requests: list[PlannedRequest] = []
    not_reviewed: list[NotReviewed] = []
    spent = [0.0] * len(budget.caps)
    for group in groups:
        messages = _messages(options, _sections(group))
        tokens = estimate_messages(messages)
        costs = [cap.measure(tokens) for cap in budget.caps]
        hit = next(
            (cap for cap, used, cost in zip(budget.caps, spent, costs, strict=True) if used + cost > cap.limit), None
        )
        if hit is not None:
            not_reviewed.extend(_not_reviewed(group, f"{hit.reason} was reached"))
            continue
        spent = [used + cost for used, cost in zip(spent, costs, strict=True)]
        requests.append(PlannedRequest(len(requests), tuple(group), tuple(messages), tokens))
    return Plan(tuple(requests), tuple(not_reviewed), budget, options)


def split_request(request: PlannedRequest, options: PromptOptions) -> tuple[PlannedRequest, PlannedRequest] | None:
    """``request`` as two requests of about half its chunks each (same index), worded the same
    way; None when it holds a single chunk, which cannot be split."""
    if len(request.chunks) < 2:
        return None
    half = sum(chunk.tokens for chunk in request.chunks) / 2
    used, cut = 0, 1
    for position, chunk in enumerate(request.chunks[:-1], 1):
        used += chunk.tokens
        cut = position
        if used >= half:
            break
    parts = []
    for chunks in (request.chunks[:cut], request.chunks[cut:]):
        messages = _messages(options, _sections(chunks))
        parts.append(PlannedRequest(request.index, tuple(chunks), tuple(messages), estimate_messages(messages)))
    return parts[0], parts[1]


def _messages(options: PromptOptions, sections: list[str]) -> list[dict[str, str]]:
    return build_messages(
        context=options.context,
        sections=sections,
        include_nits=options.include_nits,
        extra_instructions=options.extra_instructions,
        function_context=options.function_context,
    )


def _sections(chunks: Sequence[Chunk]) -> list[str]:
    """One text section per file, holding that file's chunks in order."""
    sections: list[str] = []
    current: DiffFile | None = None
    for chunk in chunks:
        if chunk.file is not current:
            sections.append(render_file_header(chunk.file))
            current = chunk.file
        sections[-1] += "\n" + chunk.text
    return sections


def _pack(files: Sequence[DiffFile], room: int) -> list[list[Chunk]]:
    """Greedy first-fit in diff order; a file moves whole to a fresh request when that makes it fit."""
    groups: list[list[Chunk]] = [[]]
    used = 0
    for file in files:
        header = estimate_tokens(render_file_header(file)) + 1
        chunks = list(_file_chunks(file, room - header))
        whole = header + sum(chunk.tokens for chunk in chunks)
        if used + whole > room and whole <= room and groups[-1]:
            groups.append([])
            used = 0
        file_started = False
        for chunk in chunks:
            cost = chunk.tokens + (0 if file_started else header)
            if used + cost > room and groups[-1]:
                groups.append([])
                used, file_started = 0, False
                cost = chunk.tokens + header
            groups[-1].append(chunk)
            used += cost
            file_started = True
    return [group for group in groups if group]


def _file_chunks(file: DiffFile, room: int) -> list[Chunk]:
    chunks: list[Chunk] = []
    for hunk in file.hunks:
        rendered = render_lines(hunk.lines)
        text = render_hunk_header(hunk) + "\n" + "\n".join(rendered)
        if hunk.context_before or hunk.context_after:
            wider = _with_context(hunk, rendered)
            # The context is a help, never a reason to split a hunk that fits without it.
            if (tokens := estimate_tokens(wider)) <= room:
                chunks.append(Chunk(file, hunk, hunk.lines, 1, 1, wider, tokens))
                continue
        tokens = estimate_tokens(text)
        if tokens <= room:
            chunks.append(Chunk(file, hunk, hunk.lines, 1, 1, text, tokens))
        else:
            chunks.extend(_split_hunk(file, hunk, rendered, room))
    return chunks


def _with_context(hunk: Hunk, rendered: list[str]) -> str:
    """A hunk's text with its context lines around it, and ``…`` where lines were left out between."""
    numbers = [line.new_no for line in hunk.lines if line.new_no is not None]
    first = numbers[0] if numbers else hunk.new_start + 1
    last = numbers[-1] if numbers else hunk.new_start
    parts = [render_hunk_header(hunk), *render_context(hunk.context_before)]
    if hunk.context_before and hunk.context_before[-1].number + 1 != first:
        parts.append("…")
    parts.extend(rendered)
    if hunk.context_after and hunk.context_after[0].number != last + 1:
        parts.append("…")
    parts.extend(render_context(hunk.context_after))
    return "\n".join(parts)


def _split_hunk(file: DiffFile, hunk: Hunk, rendered: list[str], room: int) -> list[Chunk]:
    """Cut a hunk that alone exceeds the budget into slices of whole lines."""
    header_tokens = estimate_tokens(render_hunk_header(hunk, 99, 99)) + 1
    slices: list[tuple[int, int]] = []
    start, used = 0, header_tokens
    for index, text in enumerate(rendered):
        cost = estimate_tokens(text) + 1
        if used + cost > room and index > start:
            slices.append((start, index))
            start, used = index, header_tokens
        used += cost
    slices.append((start, len(rendered)))
    chunks = []
    for part, (begin, end) in enumerate(slices, 1):
        text = render_hunk_header(hunk, part, len(slices)) + "\n" + "\n".join(rendered[begin:end])
        chunks.append(
            Chunk(file, hunk, hunk.lines[begin:end], part, len(slices), text, estimate_tokens(text)),
        )
    return chunks


def _display_number(line: DiffLine) -> int:
    """New-file numbers where the line has one, so a range reads as lines of the file as it is now."""
    return line.new_no if line.new_no is not None else line.number


def _not_reviewed(chunks: Sequence[Chunk], reason: str) -> list[NotReviewed]:
    return [NotReviewed(chunk.file.path, chunk.first_line, chunk.last_line, reason) for chunk in chunks]
