"""Labelled cases on disk: the format, the loader and the writer.

A case set is a folder::

    flask-bench/
      cases.jsonl            one case per line (below)
      diffs/<id>.diff        each case's diff, bytes exactly as git printed them
      NOTICE.md, LICENSES/   where the cases came from (optional, for people)

Each line of ``cases.jsonl`` is one JSON object::

    {
      "id": "flask-2e8fe7b2f2b5-1",           # unique in the set; letters, digits, . _ -
      "title": "Change src/flask/app.py",      # what the model is told of the change; neutral,
      "description": "",                       #   never a hint of the bug
      "diff": "diffs/flask-2e8fe7b2f2b5-1.diff",  # relative to the folder, inside it
      "labels": [                              # the bugs a good review finds; [] for a clean case
        {
          "path": "src/flask/app.py",          # the file as the diff names it (new path)
          "side": "RIGHT",                     # RIGHT: new-file lines; LEFT: removed lines
          "start_line": 120, "end_line": 121,  # inclusive, on that side
          "kind": "inverted-condition",        # see KINDS; other words are allowed
          "description": "the condition is inverted"
        }
      ],
      "source": {
        "repository": "pallets/flask",         # where the code came from
        "commit": "2e8fe7b2…", "parent": "9659b11a…",   # full hashes; null when unknown
        "licence": "BSD-3-Clause",             # SPDX identifier; null when unknown
        "method": "injected"                   # "injected", "history" or "manual"
      },
      "heads": "heads/flask-2e8fe7b2f2b5-1"   # optional: a folder holding the changed files as the
    }                                          #   diff leaves them, for function context (below)

A heads folder holds each file at its path with ``.head`` appended (``src/flask/app.py.head``),
so that no linter, type checker or packager takes another project's code for this one's.

For a ``history`` case, ``commit`` is the fix and ``parent`` the commit before it: the diff
goes from the fix back to its parent. For an ``injected`` one, they are the real commit whose
diff the bug was planted in. ``reviewbot:starter`` names the set that ships inside the package.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from reviewbot.engine.diff import Diff, DiffFile, Side, decode, parse_diff
from reviewbot.errors import DiffError, InputError
from reviewbot.head_files import MAX_HEAD_BYTES

CASES_FILE = "cases.jsonl"
STARTER = "reviewbot:starter"
DIFFS_FOLDER = "diffs"
HEADS_FOLDER = "heads"
HEAD_SUFFIX = ".head"
# The kinds the builders write; a hand-made set may use others.
KINDS = (
    "inverted-condition",
    "off-by-one",
    "swapped-arguments",
    "dropped-await",
    "dropped-return",
    "dropped-null-check",
    "wrong-variable",
    "reverted-fix",
)
Method = Literal["injected", "history", "manual"]
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True, slots=True)
class Label:
    """Lines where a labelled bug sits: ``start_line``..``end_line`` on ``side`` of ``path``."""

    path: str
    side: Side
    start_line: int
    end_line: int
    kind: str
    description: str


@dataclass(frozen=True, slots=True)
class Source:
    """Where a case came from, so anyone can check it and honour its licence."""

    repository: str
    commit: str | None
    parent: str | None
    licence: str | None
    method: Method


@dataclass(frozen=True, slots=True)
class Case:
    """One change to review, with the bugs a good review of it finds."""

    id: str
    title: str
    description: str
    diff: bytes
    labels: tuple[Label, ...]
    source: Source
    # The changed files as the diff leaves them (path, bytes), for REVIEWBOT_CONTEXT=function.
    heads: tuple[tuple[str, bytes], ...] = ()

    def parsed(self) -> Diff:
        return parse_diff(self.diff)

    def head_texts(self) -> dict[str, str]:
        """The head files as text, decoded as diffs are (bytes that are not UTF-8 become U+FFFD)."""
        return {path: decode(data) for path, data in self.heads}


@dataclass(frozen=True, slots=True)
class CaseSet:
    """The cases of one set, in file order; ``name`` is how the user named it."""

    name: str
    cases: tuple[Case, ...]

    @property
    def labels(self) -> int:
        return sum(len(case.labels) for case in self.cases)


class _LabelRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(min_length=1)
    side: Side
    start_line: int = Field(ge=1)
    end_line: int = Field(ge=1)
    kind: str = Field(min_length=1)
    description: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> _LabelRecord:
        if self.end_line < self.start_line:
            raise ValueError(f"end_line {self.end_line} is before start_line {self.start_line}")
        return self


class _SourceRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    repository: str = Field(min_length=1)
    commit: str | None = None
    parent: str | None = None
    licence: str | None = None
    method: Method = "manual"


class _CaseRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_ID.pattern)
    title: str = ""
    description: str = ""
    diff: str = Field(min_length=1)
    labels: list[_LabelRecord]
    source: _SourceRecord
    heads: str | None = Field(default=None, min_length=1)


def load_set(location: str) -> CaseSet:
    """The cases of a set folder, of its ``cases.jsonl`` named directly, or of ``reviewbot:starter``.

    Raises :class:`InputError` naming the file, the line and what is wrong with it.
    """
    if location == STARTER:
        return _load(starter_folder(), STARTER)
    path = Path(location)
    if path.is_dir():
        return _load(path, location)
    if path.is_file():
        return _load(path.parent, location, path)
    raise InputError(f"{location} does not exist; name a case folder, its {CASES_FILE}, or {STARTER}")


def starter_folder() -> Path:
    """The set that ships inside the package (built by scripts/build_starter_set.py)."""
    return Path(str(resources.files("reviewbot.eval").joinpath("starter")))


def _load(folder: Path, name: str, cases_file: Path | None = None) -> CaseSet:
    cases_file = cases_file or folder / CASES_FILE
    try:
        text = cases_file.read_text("utf-8")
    except FileNotFoundError:
        raise InputError(f"{folder} has no {CASES_FILE}; build one with `reviewbot eval build`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {cases_file}: {exc}") from exc
    cases: list[Case] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{cases_file} line {number}"
        case = _read_case(line, folder, where)
        if case.id in seen:
            raise InputError(f"{where}: the id {case.id!r} is used twice; ids must be unique in a set")
        seen.add(case.id)
        cases.append(case)
    if not cases:
        raise InputError(f"{cases_file} holds no case")
    return CaseSet(name, tuple(cases))


def _read_case(line: str, folder: Path, where: str) -> Case:
    try:
        record = _CaseRecord.model_validate(json.loads(line))
    except json.JSONDecodeError as exc:
        raise InputError(f"{where} is not JSON: {exc.msg} at column {exc.colno}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'case'}: {e['msg']}" for e in exc.errors())
        raise InputError(f"{where}: {problems}") from None
    diff_path = (folder / record.diff).resolve()
    if not diff_path.is_relative_to(folder.resolve()):
        raise InputError(f"{where}: the diff {record.diff!r} is outside the set's folder")
    heads = _read_heads(folder, record.heads, where) if record.heads else ()
    try:
        data = diff_path.read_bytes()
    except OSError as exc:
        raise InputError(f"{where}: cannot read the diff {record.diff}: {exc.strerror}") from None
    labels = tuple(
        Label(label.path, label.side, label.start_line, label.end_line, label.kind, label.description)
        for label in record.labels
    )
    source = record.source
    case = Case(
        id=record.id,
        title=record.title,
        description=record.description,
        diff=data,
        labels=labels,
        source=Source(source.repository, source.commit, source.parent, source.licence, source.method),
        heads=heads,
    )
    _check_labels(case, where)
    return case


def _read_heads(folder: Path, heads: str, where: str) -> tuple[tuple[str, bytes], ...]:
    """Every file under a case's heads folder, by its path inside that folder."""
    root = (folder / heads).resolve()
    if not root.is_relative_to(folder.resolve()) or not root.is_dir():
        raise InputError(f"{where}: heads {heads!r} is not a folder inside the set's folder")
    found = []
    for path in sorted(root.rglob(f"*{HEAD_SUFFIX}")):
        # A link out of the folder (to ~/.ssh, say) would send that file to the model endpoint;
        # a file larger than a review would read is left out, as a review leaves it out.
        if not path.is_file() or not path.resolve().is_relative_to(root) or path.stat().st_size > MAX_HEAD_BYTES:
            continue
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"{where}: cannot read the head file {path.relative_to(root)}: {exc.strerror}") from None
        found.append((path.relative_to(root).as_posix().removesuffix(HEAD_SUFFIX), data))
    return tuple(found)


def _check_labels(case: Case, where: str) -> None:
    """Every label must sit on lines its diff shows on that side: a label nobody can hit is a typo."""
    try:
        files = {file.path: file for file in case.parsed().files}
    except DiffError as exc:
        raise InputError(f"{where}: the diff of {case.id} is not readable: {exc}") from None
    for label in case.labels:
        file = files.get(label.path)
        if file is None:
            raise InputError(f"{where}: the label on {label.path} names a file the diff does not change")
        shown = lines_on_side(file, label.side)
        if not any(label.start_line <= line <= label.end_line for line in shown):
            raise InputError(
                f"{where}: the label on {label.path} lines {label.start_line}-{label.end_line} ({label.side}) "
                "covers no line the diff shows on that side"
            )


def lines_on_side(file: DiffFile, side: Side) -> set[int]:
    """The line numbers a diff shows for ``file`` on ``side``: removed lines on LEFT, the others on RIGHT."""
    shown: set[int] = set()
    for hunk in file.hunks:
        for line in hunk.lines:
            if side is Side.LEFT and line.kind == "-" and line.old_no is not None:
                shown.add(line.old_no)
            elif side is Side.RIGHT and line.kind != "-" and line.new_no is not None:
                shown.add(line.new_no)
    return shown


def label_to_dict(label: Label) -> dict[str, object]:
    """A label as in ``cases.jsonl``."""
    return {
        "path": label.path,
        "side": str(label.side),
        "start_line": label.start_line,
        "end_line": label.end_line,
        "kind": label.kind,
        "description": label.description,
    }


def case_record(case: Case) -> dict[str, object]:
    """A case as the JSON object of its line in ``cases.jsonl``."""
    return {
        "id": case.id,
        "title": case.title,
        "description": case.description,
        "diff": f"{DIFFS_FOLDER}/{case.id}.diff",
        "labels": [label_to_dict(label) for label in case.labels],
        "source": {
            "repository": case.source.repository,
            "commit": case.source.commit,
            "parent": case.source.parent,
            "licence": case.source.licence,
            "method": case.source.method,
        },
        **({"heads": f"{HEADS_FOLDER}/{case.id}"} if case.heads else {}),
    }


def write_set(folder: Path, cases: Iterable[Case]) -> int:
    """Write ``cases`` as a set in ``folder`` (created if missing; an existing set is replaced, and
    a non-empty folder without one is refused).

    Returns how many cases were written.
    """
    if folder.is_dir() and any(folder.iterdir()) and not (folder / CASES_FILE).is_file():
        # Replacing a set clears its diffs and head files; a folder that holds no set is someone's.
        raise InputError(f"{folder} is not empty and holds no case set ({CASES_FILE}); write the set to a new folder")
    diffs = folder / DIFFS_FOLDER
    diffs.mkdir(parents=True, exist_ok=True)
    for stale in diffs.glob("*.diff"):
        stale.unlink()
    shutil.rmtree(folder / HEADS_FOLDER, ignore_errors=True)
    lines = []
    for case in cases:
        if not _ID.fullmatch(case.id):
            raise ValueError(f"case id {case.id!r} has characters a file name cannot take")
        (diffs / f"{case.id}.diff").write_bytes(case.diff)
        for path, data in case.heads:
            if path.startswith("/") or ".." in Path(path).parts:
                raise ValueError(f"head file {path!r} of {case.id} would land outside its folder")
            target = folder / HEADS_FOLDER / case.id / f"{path}{HEAD_SUFFIX}"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        lines.append(json.dumps(case_record(case), ensure_ascii=False))
    (folder / CASES_FILE).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return len(lines)
