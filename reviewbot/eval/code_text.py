"""Just enough of a source line's syntax to change its code and never its strings or comments.

:func:`masked` returns the line with the inside of string literals and any trailing comment
replaced by ``MASK``, at the same length, so a pattern searched in the masked line finds only
code, and its position is the same in the real line.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

MASK = "\x00"

# Languages by file extension: python, rust, go, js (JavaScript and TypeScript), and c for the
# languages that share C's syntax for conditions, strings and comments.
_LANGUAGES = {
    ".py": "python",
    ".rs": "rust",
    ".go": "go",
    ".js": "js",
    ".jsx": "js",
    ".mjs": "js",
    ".cjs": "js",
    ".ts": "js",
    ".tsx": "js",
    ".c": "c",
    ".h": "c",
    ".cc": "c",
    ".cpp": "c",
    ".hpp": "c",
    ".java": "c",
    ".cs": "c",
    ".kt": "c",
    ".swift": "c",
}
SOURCE_EXTENSIONS = tuple(_LANGUAGES)
_CHAR_LITERAL = re.compile(r"'(?:\\.|[^\\'])'")


def language_of(path: str) -> str | None:
    return _LANGUAGES.get(PurePosixPath(path).suffix.lower())


def is_comment(line: str, language: str) -> bool:
    """Whether the whole line is a comment (or blank)."""
    text = line.strip()
    if not text:
        return True
    if language == "python":
        return text.startswith("#")
    return text.startswith(("//", "/*", "*", "*/"))


def masked(line: str, language: str) -> str:
    """``line`` with string contents and a trailing comment masked (same length)."""
    return _scan(line, language)[0]


def leaves_string_open(line: str, language: str) -> bool:
    """Whether a one-quote string literal is still open at the end of ``line``: it opens a string
    that runs on to the next lines, or, read from a line inside such a string, closes it.
    (Python's triple-quoted strings are followed apart.)"""
    return _scan(line, language)[1]


def switches_text(line: str, language: str) -> bool:
    """Whether ``line`` enters or leaves text that runs over several lines: a docstring
    (an odd number of triple quotes), a block comment, or a string literal left open."""
    if language == "python":
        return (line.count('"""') + line.count("'''")) % 2 == 1
    opened, closed = line.rfind("/*"), line.rfind("*/")
    if opened > closed or (closed >= 0 and opened < 0):
        return True
    return leaves_string_open(line, language)


def _scan(line: str, language: str) -> tuple[str, bool]:
    out = list(line)
    quotes = _quotes(language)
    index = 0
    while index < len(line):
        char = line[index]
        if _comment_starts(line, index, language):
            out[index:] = MASK * (len(line) - index)
            break
        if language in ("rust", "c") and char == "'":
            # A char literal ('x', '\\n'); otherwise a Rust lifetime or label ('a), not a string.
            literal = _CHAR_LITERAL.match(line, index)
            if literal is not None:
                out[index + 1 : literal.end() - 1] = MASK * (literal.end() - index - 2)
                index = literal.end()
                continue
        if char in quotes:
            end, closed = _string_end(line, index, char)
            inner_end = end - 1 if closed else end
            out[index + 1 : inner_end] = MASK * max(0, inner_end - index - 1)
            if not closed and not line.startswith(char * 3, index):
                return "".join(out), True
            index = end
            continue
        index += 1
    return "".join(out), False


def _quotes(language: str) -> str:
    if language == "python":
        return "\"'"
    if language == "go":
        return '"`'
    if language == "js":
        return "\"'`"
    return '"'


def _comment_starts(line: str, index: int, language: str) -> bool:
    if language == "python":
        return line[index] == "#"
    return line.startswith("//", index)


def _string_end(line: str, start: int, quote: str) -> tuple[int, bool]:
    """The index just past the string literal that opens at ``start``, and whether it closes on
    this line (the index is then the line's length)."""
    triple = quote * 3
    if quote in "\"'" and line.startswith(triple, start):
        end = line.find(triple, start + 3)
        return (len(line), False) if end < 0 else (end + 3, True)
    index = start + 1
    while index < len(line):
        if line[index] == "\\" and quote != "`":
            index += 2
            continue
        if line[index] == quote:
            return index + 1, True
        index += 1
    return len(line), False


def closing_paren(text: str, open_index: int) -> int | None:
    """The index of the parenthesis that closes the one at ``open_index``, or None."""
    depth = 0
    for index in range(open_index, len(text)):
        if text[index] == "(":
            depth += 1
        elif text[index] == ")":
            depth -= 1
            if depth == 0:
                return index
    return None


_ATOM = re.compile(r"[\w.]+(?:\[[^\[\]]*\])?(?:\([^()]*\))?")


def is_atom(expression: str) -> bool:
    """A name, attribute, subscript or simple call: negating it needs no parentheses."""
    return _ATOM.fullmatch(expression.strip()) is not None
