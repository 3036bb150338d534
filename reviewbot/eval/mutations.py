"""Plant one real bug in one line of code: the mutations an injected case is made of.

Each operator finds the places in a line where its kind of bug can be planted, on the code
only (see :func:`reviewbot.eval.code_text.masked`), and returns them as edits of the line:

- ``inverted-condition``: ``if x:`` → ``if not x:``, ``==`` ↔ ``!=``, ``is None`` ↔ ``is not None``
- ``off-by-one``: ``<`` ↔ ``<=``, ``>`` ↔ ``>=``, ``..`` ↔ ``..=``, a ``+ 1`` or ``- 1`` dropped
- ``swapped-arguments``: ``f(a, b)`` → ``f(b, a)``
- ``dropped-await``, ``dropped-return``: the keyword removed, the expression kept
- ``dropped-null-check``: ``x is not None and …``, ``x && x.y``, ``?.``, ``!= nil && …`` dropped
- ``wrong-variable``: a variable replaced by another one the same hunk uses
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from reviewbot.eval.code_text import MASK, closing_paren, is_atom, masked


@dataclass(frozen=True, slots=True)
class Mutation:
    """Replace ``line[start:end]`` with ``replacement``: a bug of ``kind``."""

    kind: str
    start: int
    end: int
    replacement: str
    description: str

    def apply(self, line: str) -> str:
        return line[: self.start] + self.replacement + line[self.end :]


Operator = Callable[[str, str, str, Sequence[str]], Iterator[Mutation]]

_PY_CONDITION = re.compile(r"^(\s*)(?:if|elif|while)\s+(?P<cond>[^\x00]+?)\s*:[\s\x00]*$")
_BRACE_CONDITION = re.compile(r"^(\s*)(?:\}\s*)?(?:else\s+)?(?:if|while)\s+(?P<cond>[^{\x00]+?)\s*\{[\s\x00]*$")
_PAREN_CONDITION = re.compile(r"\b(?:if|while)\s*\(")
_FLIPS = (
    (re.compile(r"(?<=\s)(===|!==|==|!=)(?=\s)"), {"==": "!=", "!=": "==", "===": "!==", "!==": "==="}),
    (re.compile(r"(?<=\s)(is not|is|not in)(?= )"), {"is not": "is", "is": "is not", "not in": "in"}),
)
_COMPARISON = re.compile(r"[<>=!]=|[<>]| is | in ")
_BOUND = re.compile(r"(?<=[\w)\]]) (<=|>=|<|>) (?=[\w(\-])")
_BOUNDS = {"<": "<=", "<=": "<", ">": ">=", ">=": ">"}
_PLUS_MINUS_ONE = re.compile(r" [+-] 1(?![\w.])")
_RUST_RANGE = re.compile(r"(?<=[\w)\]])\.\.(=?)(?=[\w(])")
_CALL = re.compile(r"(?<![\w.])(?P<fn>[A-Za-z_][\w.]*)\((?P<a>[^(),=*{}\[\]]+?), (?P<b>[^(),=*{}\[\]]+?)\)")
_COMMUTATIVE = frozenset({"max", "min", "print", "println", "format", "debug", "info", "warning", "error", "log"})
_AWAIT = re.compile(r"\bawait\s+")
_RETURN = re.compile(r"^(\s*)(return\s+)(?P<e>\S[^\x00]*?)[\s\x00;]*$")
_NULL_CHECKS = {
    "python": (
        re.compile(r"\b([\w.]+) is not None and "),
        re.compile(r" and ([\w.]+) is not None\b"),
        re.compile(r"\b([\w.]+) is None or "),
        re.compile(r"\b(\w[\w.]*) and (?=\1\.)"),
    ),
    "js": (
        re.compile(r"\b([\w.]+) (?:!==?) (?:null|undefined) && "),
        re.compile(r"\b(\w[\w.]*) && (?=\1\.)"),
    ),
    "go": (re.compile(r"\b([\w.]+) != nil && "),),
    "c": (re.compile(r"\b([\w.>-]+) != (?:null|NULL|nullptr) && "),),
    "rust": (),
}
_OPTIONAL_CHAIN = re.compile(r"\?\.(?=\w)")
_UNWRAP_OR = re.compile(r"\.unwrap_or(?:_default|_else)?\(")
_NAME = re.compile(r"(?<![\w.])[a-z_][a-z0-9_]*\b")
_KEYWORDS = frozenset(
    [
        "and",
        "as",
        "assert",
        "async",
        "await",
        "break",
        "case",
        "class",
        "const",
        "continue",
        "def",
        "del",
        "elif",
        "else",
        "enum",
        "except",
        "false",
        "fn",
        "for",
        "from",
        "func",
        "go",
        "if",
        "impl",
        "import",
        "in",
        "is",
        "let",
        "loop",
        "match",
        "mod",
        "move",
        "mut",
        "nil",
        "none",
        "not",
        "null",
        "or",
        "pass",
        "pub",
        "raise",
        "ref",
        "return",
        "self",
        "static",
        "struct",
        "super",
        "this",
        "true",
        "try",
        "type",
        "typeof",
        "use",
        "var",
        "while",
        "with",
        "yield",
        "undefined",
        "new",
        "delete",
        "crate",
        "where",
        "defer",
        "range",
        "select",
        "switch",
        "default",
        "package",
        "interface",
        "chan",
        "map",
        "int",
        "str",
        "bool",
        "float",
        "len",
        "print",
        "isinstance",
    ]
)
_DECLARATION = re.compile(
    r"^\s*(?:(?:async|pub(?:\([\w ]+\))?|extern)\s+)*(?:def|fn|func|class|import|from|use|package|struct|type|"
    r"crate|mod|enum|trait|impl)\b|^\s*(?:#!?\[|@)"
)
# A name that is not a variable read: a module or type path (`io::`), a macro (`println!`), a
# binding being declared (`let x`, `x: int`).
_NOT_READ_AFTER = re.compile(r"\s*(?:\(|!|::|:(?!:)|=(?!=))")
_NOT_READ_BEFORE = re.compile(r"(?:::|\b(?:let|mut|var|const|for|as|ref|lambda))\s*$")
_PATTERN_ARGUMENT = re.compile(r"\s*(?:_|ref\b.*|mut\b.*)\s*")


def mutations(line: str, language: str, hunk_names: Sequence[str] = ()) -> list[Mutation]:
    """Every bug that can be planted in ``line`` (code in ``language``); ``hunk_names`` are the
    variables its hunk uses, for ``wrong-variable``."""
    code = masked(line, language)
    found: list[Mutation] = []
    for operator in _OPERATORS:
        found.extend(operator(line, code, language, hunk_names))
    return [mutation for mutation in found if mutation.apply(line) != line]


def _inverted(line: str, code: str, language: str, names: Sequence[str]) -> Iterator[Mutation]:
    condition = _condition_span(code, language)
    # A comparison is inverted by flipping its operator (below): `not (a is not None)` reads as planted.
    if condition is not None and not _COMPARISON.search(code[condition[0] : condition[1]]):
        start, end = condition
        text = line[start:end]
        negation = "not " if language == "python" else "!"
        if text.startswith(negation) and is_atom(text[len(negation) :]):
            replacement = text[len(negation) :]
        elif is_atom(text):
            replacement = f"{negation}{text}"
        else:
            replacement = f"{negation}({text})"
        yield Mutation("inverted-condition", start, end, replacement, "the condition is inverted")
    for pattern, flips in _FLIPS:
        for match in pattern.finditer(code):
            if match.group(1) in ("is", "is not", "not in") and language != "python":
                continue
            replacement = flips[match.group(1)]
            yield Mutation(
                "inverted-condition",
                match.start(1),
                match.end(1),
                replacement,
                f"`{match.group(1)}` became `{replacement}`: the comparison is inverted",
            )


def _condition_span(code: str, language: str) -> tuple[int, int] | None:
    if language == "python":
        match = _PY_CONDITION.match(code)
        return match.span("cond") if match else None
    if language in ("rust", "go"):
        match = _BRACE_CONDITION.match(code)
        if match is None or re.match(r"let\b", match.group("cond")):
            return None
        return match.span("cond")
    opening = _PAREN_CONDITION.search(code)
    if opening is None:
        return None
    closing = closing_paren(code, opening.end() - 1)
    if closing is None or closing == opening.end():
        return None
    return opening.end(), closing


def _off_by_one(line: str, code: str, language: str, names: Sequence[str]) -> Iterator[Mutation]:
    for match in _BOUND.finditer(code):
        replacement = _BOUNDS[match.group(1)]
        yield Mutation(
            "off-by-one",
            match.start(1),
            match.end(1),
            replacement,
            f"the bound `{match.group(1)}` became `{replacement}`",
        )
    for match in _PLUS_MINUS_ONE.finditer(code):
        yield Mutation("off-by-one", match.start(), match.end(), "", f"`{match.group().strip()}` was dropped")
    if language == "rust":
        for match in _RUST_RANGE.finditer(code):
            replacement = ".." if match.group(1) else "..="
            yield Mutation("off-by-one", match.start(), match.end(), replacement, "the range's end moved by one")


def _swapped(line: str, code: str, language: str, names: Sequence[str]) -> Iterator[Mutation]:
    if _is_declaration(code):
        return  # parameters, not arguments
    for match in _CALL.finditer(code):
        function = match.group("fn").rsplit(".", 1)[-1]
        first, second = line[match.start("a") : match.end("a")], line[match.start("b") : match.end("b")]
        if function in _COMMUTATIVE or first.strip() == second.strip() or MASK in match.group("fn"):
            continue
        if _PATTERN_ARGUMENT.fullmatch(first) or _PATTERN_ARGUMENT.fullmatch(second):
            continue  # a pattern being matched (`Error::Io(_, ref e)`), not a call
        yield Mutation(
            "swapped-arguments",
            match.start("a"),
            match.end("b"),
            f"{second}, {first}",
            f"the arguments of `{match.group('fn')}` are swapped",
        )


def _dropped_keyword(line: str, code: str, language: str, names: Sequence[str]) -> Iterator[Mutation]:
    if language in ("python", "js"):
        for match in _AWAIT.finditer(code):
            yield Mutation("dropped-await", match.start(), match.end(), "", "the `await` was dropped")
    returned = _RETURN.match(code)
    # Only where the dropped keyword still compiles: elsewhere the compiler would find the bug.
    if returned is not None and language in ("python", "js"):
        start, end = returned.span(2)
        yield Mutation("dropped-return", start, end, "", "the `return` was dropped: the value is computed and lost")


def _dropped_null_check(line: str, code: str, language: str, names: Sequence[str]) -> Iterator[Mutation]:
    description = "the check for a missing value was dropped"
    for pattern in _NULL_CHECKS.get(language, ()):
        for match in pattern.finditer(code):
            yield Mutation("dropped-null-check", match.start(), match.end(), "", description)
    if language == "js":
        for match in _OPTIONAL_CHAIN.finditer(code):
            yield Mutation("dropped-null-check", match.start(), match.end(), ".", "`?.` became `.`")
    if language == "rust":
        for match in _UNWRAP_OR.finditer(code):
            closing = closing_paren(code, match.end() - 1)
            if closing is not None:
                yield Mutation(
                    "dropped-null-check", match.start(), closing + 1, ".unwrap()", "a fallback became `unwrap()`"
                )


def _wrong_variable(line: str, code: str, language: str, names: Sequence[str]) -> Iterator[Mutation]:
    if _is_declaration(code):
        return
    candidates = sorted({name for name in names if len(name) > 1 and name not in _KEYWORDS})
    # In a match arm, the names before `=>` are bindings of the pattern, not reads.
    arm = code.find("=>")
    for match in _NAME.finditer(code, arm + 2 if arm >= 0 else 0):
        name = match.group()
        if name in _KEYWORDS or len(name) < 2 or not _is_read(code, match):
            continue
        # Only a name that looks like it (a shared start or end) is one a hand slips to.
        others = [other for other in candidates if other != name and _likeness(name, other) >= _LIKE]
        if not others:
            continue
        other = max(others, key=lambda other: (_likeness(name, other), other))
        yield Mutation(
            "wrong-variable", match.start(), match.end(), other, f"`{name}` became `{other}`, another variable"
        )


_LIKE = 2


def _is_declaration(code: str) -> bool:
    """A definition, an import (one line of a `use a::{…}` too), an attribute or a decorator."""
    return _DECLARATION.match(code) is not None or "::{" in code


def _is_read(code: str, match: re.Match[str]) -> bool:
    return not _NOT_READ_AFTER.match(code, match.end()) and not _NOT_READ_BEFORE.search(code, 0, match.start())


def _likeness(name: str, other: str) -> int:
    """How alike two names look: their common prefix and suffix, which is what makes a slip likely."""
    prefix = len(_common_prefix(name, other))
    suffix = len(_common_prefix(name[::-1], other[::-1]))
    return prefix + suffix


def _common_prefix(first: str, second: str) -> str:
    size = 0
    while size < min(len(first), len(second)) and first[size] == second[size]:
        size += 1
    return first[:size]


def variable_names(lines: Sequence[str], language: str) -> list[str]:
    """The names a hunk's lines read or assign, for ``wrong-variable`` (calls and keywords left out)."""
    names: set[str] = set()
    for line in lines:
        code = masked(line, language)
        for match in _NAME.finditer(code):
            if match.group() not in _KEYWORDS and _is_read(code, match):
                names.add(match.group())
    return sorted(names)


_OPERATORS: tuple[Operator, ...] = (
    _inverted,
    _off_by_one,
    _swapped,
    _dropped_keyword,
    _dropped_null_check,
    _wrong_variable,
)
