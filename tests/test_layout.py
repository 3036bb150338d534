"""The package's layout holds: no import cycle, imports run one way between its parts, modules stay small.

Imports are read with :mod:`ast`, so every import counts: at module level, inside functions,
and under ``if TYPE_CHECKING:``. A type-only import still ties two modules together.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "reviewbot"
MAX_LINES = 500

# The part each module belongs to: its sub-package, or "base" for the leaves at the top
# (settings, errors, logs…), or "cli" for the command line over everything.
TOP_LEVEL_PARTS = {"cli": "cli", "__main__": "cli"}
# Which parts each part may import (its own always). The engine knows nothing of GitHub, the
# service or the store; the store knows nothing of reviews; only the service and the CLI see all.
MAY_IMPORT: dict[str, set[str]] = {
    "base": set(),
    "engine": {"base"},
    "render": {"base", "engine"},
    "store": {"base"},
    "github": {"base", "engine", "render"},
    "money": {"base", "engine", "render", "store", "github"},
    "service": {"base", "engine", "render", "store", "github", "money"},
    # Measuring models runs the engine as a review does, and knows nothing of the App.
    "eval": {"base", "engine", "render"},
    "cli": {"base", "engine", "render", "store", "github", "money", "service", "eval"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def part_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "base"  # the package's own __init__ (its version)
    if len(parts) > 2 or (PACKAGE / parts[1]).is_dir():
        return parts[1]
    return TOP_LEVEL_PARTS.get(parts[1], "base")


def imported_by(module: str) -> Iterator[str]:
    """The package's modules that ``module`` imports, wherever the import statement stands."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from reviewbot.x import y` imports module reviewbot.x.y when y is one.
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        yield from (name for name in names if name in MODULES and name != module)


GRAPH = {module: sorted(set(imported_by(module))) for module in MODULES}


def cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_import_walk_sees_the_package() -> None:
    # A walk that found nothing would pass every check below.
    assert len(MODULES) > 40
    assert "reviewbot.engine.review" in GRAPH["reviewbot.service.pipeline"]
    assert "reviewbot.engine.diff" in GRAPH["reviewbot.engine.review"]
    assert "reviewbot.engine.fallback" in GRAPH["reviewbot.cli"]  # imported inside a function


def test_finds_a_cycle_when_there_is_one() -> None:
    graph = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": ["b"], "b": []}) == []


def test_no_module_of_the_package_imports_itself_back() -> None:
    assert cycles(GRAPH) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_one_way_between_parts(module: str) -> None:
    part = part_of(module)
    wrong = [target for target in GRAPH[module] if part_of(target) != part and part_of(target) not in MAY_IMPORT[part]]
    assert wrong == [], f"{module} ({part}) imports {wrong}, which {part} may not"


def test_only_the_adapters_import_their_outside_system() -> None:
    owners = {
        "githubkit": "github",
        "openai": "engine.llm",
        "genai_prices": "engine.price_db",
        "psycopg": "store",
        "sqlite3": "store",
    }
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level:
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            for root in roots & owners.keys():
                assert module.startswith(f"reviewbot.{owners[root]}"), f"{module} imports {root}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_small(module: str) -> None:
    lines = MODULES[module].read_text("utf-8").count("\n")
    assert lines <= MAX_LINES, f"{module} has {lines} lines; split it by job"
