"""Build ``reviewbot:starter``, the case set that ships in the package (``reviewbot/eval/starter``).

    git clone https://github.com/pallets/flask /tmp/flask
    git clone https://github.com/BurntSushi/ripgrep /tmp/ripgrep
    git clone https://github.com/sharkdp/bat /tmp/bat
    python scripts/build_starter_set.py --flask /tmp/flask --ripgrep /tmp/ripgrep --bat /tmp/bat

It writes the same cases every time:

- injected bugs: up to four per real diff of ``tests/data/diffs`` (commits of pallets/flask,
  BurntSushi/ripgrep and sharkdp/bat; diffs over 30 KB left out), seed 1;
- history: the newest bug fixes of pallets/flask and BurntSushi/ripgrep up to a pinned commit of
  each, undone (source files only), with the builder's default pattern and limits.

Each case carries its head files (what function context reads around the hunks): for history
cases the fix's parent, for injected ones the commit's files with the planted line in them.

It checks what it wrote (no test file in a case, no fix message in a diff, every label on a
line of its diff, every head file holding its diff's new lines), and copies each project's
licence files from the clone, at the pinned commit.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

from reviewbot.engine.context import head_paths, matches, split_lines
from reviewbot.engine.filters import FilterRules
from reviewbot.eval.build import write_licences, write_notice
from reviewbot.eval.cases import Case, Source, load_set, write_set
from reviewbot.eval.history import HistoryOptions, build_from_history, licence_file_texts
from reviewbot.eval.inject import inject
from reviewbot.eval.paths import is_test_path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "data" / "diffs"
STARTER = ROOT / "reviewbot" / "eval" / "starter"
SEED = 1
PER_DIFF = 4
MAX_DIFF_BYTES = 30_000
LICENCES = {
    "pallets/flask": "BSD-3-Clause",
    "BurntSushi/ripgrep": "MIT OR Unlicense",
    "sharkdp/bat": "Apache-2.0 OR MIT",
}
# (repository, the commit its history is read up to, how many fixes to take, newest first)
HISTORY = (
    ("pallets/flask", "2ac89889f4cc330eabd50f295dcef02828522c69", 22),
    ("BurntSushi/ripgrep", "3fce3b5bb0236da2df6d99672afb8a719642eca7", 21),
)
PINS = {repository: commit for repository, commit, _ in HISTORY} | {
    "sharkdp/bat": "2ba8db9c14e5794572f5ea338c2b90404c9769cb"
}


def injected(clones: dict[str, Path]) -> list[Case]:
    cases: list[Case] = []
    for entry in json.loads((FIXTURES / "manifest.json").read_text("utf-8")):
        data = (FIXTURES / f"{entry['id']}.diff").read_bytes()
        if len(data) > MAX_DIFF_BYTES:
            continue
        source = Source(entry["repo"], entry["commit"], entry["parent"], LICENCES[entry["repo"]], "injected")
        found = inject(data, name=entry["id"], source=source, seed=SEED, count=PER_DIFF)
        cases += [with_heads(case, clones[entry["repo"]]) for case in found]
    return cases


def with_heads(case: Case, clone: Path) -> Case:
    """An injected case with its head files: each file at the commit, with the planted line in it
    (the one line where the case's diff differs from the commit's), for function context."""
    assert case.source.commit is not None
    heads: list[tuple[str, bytes]] = []
    reviewed = set(head_paths(case.parsed(), FilterRules()))  # no changelog or lock file: nobody reviews them
    for file in case.parsed().files:
        if file.path not in reviewed:
            continue
        lines = _git_bytes(clone, "show", f"{case.source.commit}:{file.path}").split(b"\n")
        for label in case.labels:
            if label.path != file.path or label.side != "RIGHT":
                continue
            for hunk in file.hunks:
                for line in hunk.lines:
                    if line.new_no is not None and label.start_line <= line.new_no <= label.end_line:
                        ending = b"\r" if lines[line.new_no - 1].endswith(b"\r") else b""
                        lines[line.new_no - 1] = line.text.encode() + ending
        heads.append((file.path, b"\n".join(lines)))
    return dataclasses.replace(case, heads=tuple(heads))


def history(clones: dict[str, Path]) -> list[Case]:
    cases: list[Case] = []
    for repository, commit, count in HISTORY:
        options = HistoryOptions(
            since="2010-01-01",
            revision=commit,
            max_cases=count,
            repository=repository,
            licence=LICENCES[repository],
        )
        found = build_from_history(clones[repository], options)
        if len(found) < count:
            sys.exit(f"{repository} gave {len(found)} cases up to {commit}, not {count}")
        cases += found
    return cases


def check(cases: list[Case], clones: dict[str, Path]) -> None:
    for case in cases:
        heads = case.head_texts()
        for file in case.parsed().files:
            if file.path in heads:  # the head file holds the diff's new side, planted bug included
                assert matches(file, split_lines(heads[file.path])), (case.id, file.path)
        paths = [file.path for file in case.parsed().files]
        assert not any(is_test_path(path) for path in paths if case.source.method == "history"), case.id
        assert all(not is_test_path(label.path) for label in case.labels), case.id
        if case.source.method == "history":
            assert case.source.commit is not None
            message = _git(clones[case.source.repository], "log", "-1", "--format=%B", case.source.commit)
            assert message.strip().encode() not in case.diff, case.id
            assert message.splitlines()[0].encode() not in case.diff, case.id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flask", type=Path, required=True, help="a clone of pallets/flask")
    parser.add_argument("--ripgrep", type=Path, required=True, help="a clone of BurntSushi/ripgrep")
    parser.add_argument("--bat", type=Path, required=True, help="a clone of sharkdp/bat (for its licence files)")
    parser.add_argument("--out", type=Path, default=STARTER, help="where to write the set (default: the package's)")
    args = parser.parse_args()
    clones = {"pallets/flask": args.flask, "BurntSushi/ripgrep": args.ripgrep, "sharkdp/bat": args.bat}
    for repository, clone in clones.items():
        _git(clone, "cat-file", "-e", f"{PINS[repository]}^{{commit}}")  # the pinned commit is there
    cases = injected(clones) + history(clones)
    check(cases, clones)
    if args.out.exists():
        for stale in (args.out / "LICENSES").glob("*/*"):
            stale.unlink()
    write_set(args.out, cases)
    for repository, clone in clones.items():
        write_licences(args.out, repository, licence_file_texts(clone, PINS[repository]))
    write_notice(args.out, cases)
    reloaded = load_set(str(args.out))  # the loader checks every label against its diff
    labels = sum(len(case.labels) for case in reloaded.cases)
    size = sum(path.stat().st_size for path in args.out.rglob("*") if path.is_file())
    print(f"wrote {len(reloaded.cases)} cases ({labels} labels, {size / 1024:.0f} KiB) to {args.out}")
    return 0


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def _git_bytes(repo: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=True).stdout


if __name__ == "__main__":
    sys.exit(main())
