"""The model's words made inert before they are posted as GitHub Markdown.

What a model writes can be steered by the pull request it reviews, so its prose must not act
on GitHub: ``@name`` and ``@org/team`` notify people, ``owner/repo#7`` writes a cross-reference
into another repository's issue, and an HTML comment is hidden from readers while a program
(reviewbot itself) may take it for one of its markers. A WORD JOINER (U+2060, invisible) after
the ``@`` or ``#`` breaks each of those patterns without changing what a reader sees, and HTML
comments are dropped (or, inside a code span, broken the same way).

GitHub finds mentions and references in text only, never inside code blocks (its
html-pipeline MentionFilter skips text under ``pre``, ``code`` and ``a``), so fenced code is
left exactly as written. Inline code spans are not exempt: inline HTML can hide where one
starts, and a word joiner there costs nothing a reader can see. Neither is fenced code when
the text has an HTML block, inside which a fence is not code.

See GitHub's "Autolinked references and URLs" and "Basic writing and formatting syntax"
(mentioning people and teams) for the patterns.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Final

WORD_JOINER: Final = "\u2060"

# CommonMark fences: up to three spaces, then three or more backticks or tildes; a backtick
# fence's info string has no backtick.
_FENCE: Final = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
# A line GitHub may start an HTML block with (CommonMark block kinds 1-7 all open with "<").
_HTML_BLOCK: Final = re.compile(r" {0,3}<")
_BACKTICKS: Final = re.compile(r"`+")
_BLANK_LINE: Final = re.compile(r"\n[ \t]*\n")
_HTML_COMMENT: Final = re.compile(r"<!--.*?-->", re.DOTALL)
# A URL GitHub autolinks is a link, and text in a link mentions no one. It ends at a character
# that closes Markdown or HTML around it (")", ">", "]", quotes, emphasis): what follows, such as
# "[docs](https://x.io)@admin", is text again. A URL with one of them inside has its tail treated
# as text, which at worst puts a word joiner into it; a mention must never pass as a URL.
_URL: Final = re.compile(r"(?:https?://|www\.)[A-Za-z0-9][^\s<>()\[\]\"'`*_]*")
# "@" as a mention starts: not after a letter, digit or underscore (that is an e-mail address).
_MENTION: Final = re.compile(r"(?<![A-Za-z0-9_])@(?=[A-Za-z0-9])")
_CROSS_REFERENCE: Final = re.compile(r"(?<![A-Za-z0-9_./-])([A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+)#(?=[0-9])")
# "&#64;" becomes "@" before GitHub looks for mentions; likewise "#".
_ENTITIES: Final = (
    (re.compile(r"&(?:#0*64|#[xX]0*40|commat);"), "@"),
    (re.compile(r"&(?:#0*35|#[xX]0*23|num);"), "#"),
)


@dataclass(frozen=True, slots=True)
class _Block:
    lines: list[str]
    code: bool  # a fenced code block, fences included


def neutralise(text: str) -> str:
    """``text`` with its mentions, cross-repository references and HTML comments made inert.

    A code fence the text leaves open is closed, so that nothing rendered after it (the rest of
    a comment, our markers) turns into code.
    """
    blocks, still_open = _blocks(text)
    trust_fences = not any(_HTML_BLOCK.match(line) for block in blocks if not block.code for line in block.lines)
    lines: list[str] = []
    for block in blocks:
        if block.code and trust_fences:
            lines.extend(block.lines)
        else:
            lines.extend(_neutral_prose("\n".join(block.lines)).split("\n"))
    if still_open is not None:
        lines.append(still_open)
    return "\n".join(lines)


def neutralise_line(text: str) -> str:
    """:func:`neutralise` for text that goes inside a line of ours (a title): no block in it is
    code, and no fence is added to it."""
    return _neutral_prose(" ".join(text.split())).strip()


def close_fence(text: str) -> str:
    """``text``, with a line closing the code fence it leaves open, if it does."""
    _, still_open = _blocks(text)
    return text if still_open is None else f"{text}\n{still_open}"


def inert_comments(text: str) -> str:
    """``text`` with every ``<!--`` shown as text: no HTML comment, so nothing hidden, and none
    of reviewbot's markers, can start in it."""
    return text.replace("<!--", f"<{WORD_JOINER}!--")


def _blocks(text: str) -> tuple[list[_Block], str | None]:
    """The text cut into runs of prose and fenced code blocks; and the fence that closes the
    last block if the text leaves it open."""
    blocks: list[_Block] = []
    prose: list[str] = []
    fence: list[str] = []
    opener = ""
    for line in text.split("\n"):
        if fence:
            fence.append(line)
            if _closes(line, opener):
                blocks.append(_Block(fence, code=True))
                fence = []
            continue
        match = _FENCE.fullmatch(line)
        if match is not None and not (match.group(1)[0] == "`" and "`" in match.group(2)):
            if prose:
                blocks.append(_Block(prose, code=False))
                prose = []
            opener = match.group(1)
            fence = [line]
        else:
            prose.append(line)
    if prose:
        blocks.append(_Block(prose, code=False))
    if fence:
        blocks.append(_Block(fence, code=True))
        return blocks, opener
    return blocks, None


def _closes(line: str, opener: str) -> bool:
    """Whether ``line`` closes a fence opened with ``opener``: the same character, at least as many."""
    body = line.lstrip(" ")
    if len(line) - len(body) > 3:
        return False
    run = len(body) - len(body.lstrip(opener[0]))
    return run >= len(opener) and not body[run:].strip()


def _neutral_prose(text: str) -> str:
    for entity, character in _ENTITIES:
        text = entity.sub(character, text)
    kept: list[str] = []
    position = 0
    for start, end in _code_spans(text):
        kept += [_HTML_COMMENT.sub("", text[position:start]), text[start:end]]
        position = end
    kept.append(_HTML_COMMENT.sub("", text[position:]))
    # Whatever "<!--" is left (in code, unclosed, or made by the removal itself) is shown as text.
    text = inert_comments("".join(kept))
    pieces: list[str] = []
    position = 0
    for url in _URL.finditer(text):
        pieces += [_neutral_words(text[position : url.start()]), url.group()]
        position = url.end()
    pieces.append(_neutral_words(text[position:]))
    return "".join(pieces)


def _neutral_words(text: str) -> str:
    text = _MENTION.sub(f"@{WORD_JOINER}", text)
    return _CROSS_REFERENCE.sub(rf"\1#{WORD_JOINER}", text)


def _code_spans(text: str) -> list[tuple[int, int]]:
    """Where the inline code spans of ``text`` are: a backtick run up to the next run of the same
    length in its paragraph. Only for keeping an HTML comment in code visible: a span missed or
    misread changes how a comment shows, never what notifies."""
    breaks = [blank.start() for blank in _BLANK_LINE.finditer(text)]
    runs = [(bisect.bisect(breaks, run.start()), run) for run in _BACKTICKS.finditer(text)]
    # For each run, the index of the next run of the same length in the same paragraph.
    following: list[int | None] = [None] * len(runs)
    seen: dict[tuple[int, int], int] = {}
    for index in range(len(runs) - 1, -1, -1):
        paragraph, run = runs[index]
        key = (paragraph, len(run.group()))
        following[index] = seen.get(key)
        seen[key] = index
    spans: list[tuple[int, int]] = []
    index = 0
    while index < len(runs):
        opening = runs[index][1]
        closing = following[index]
        escaped = opening.start() > 0 and text[opening.start() - 1] == "\\"  # an escaped backtick opens nothing
        if closing is None or escaped:
            index += 1
            continue
        spans.append((opening.start(), runs[closing][1].end()))
        index = closing + 1
    return spans
