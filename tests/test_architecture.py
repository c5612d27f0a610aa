"""The package's shape: no import cycle between modules or between top-level packages.

import-linter (`lint-imports`, configured in pyproject.toml) checks the layers; it has no contract
for cycles through a whole package, so this test builds the same import graph with grimp, its
graph builder (imports inside functions included, TYPE_CHECKING imports left out).
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import grimp

PACKAGE = "retrain_cli"
SOURCE = Path(__file__).resolve().parent.parent / PACKAGE


@cache
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE, exclude_type_checking_imports=True, cache_dir=None)


def _edges(unit: callable) -> dict[str, set[str]]:  # type: ignore[valid-type]
    edges: dict[str, set[str]] = {}
    g = graph()
    for module in g.modules:
        for imported in g.find_modules_directly_imported_by(module):
            a, b = unit(module), unit(imported)
            if a and b and a != b:
                edges.setdefault(a, set()).add(b)
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph, as the list of its nodes, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def _module(name: str) -> str:
    return name


def _top_level(name: str) -> str | None:
    """The top-level package (or module) of a module; the root package itself is none."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None


def test_no_import_cycle_between_modules() -> None:
    # a package's __init__ importing its own submodules is not a cycle between concepts
    edges = {a: {b for b in bs if not a.startswith(b + ".")} for a, bs in _edges(_module).items()}
    assert _cycle(edges) is None


def test_no_import_cycle_between_top_level_packages() -> None:
    assert _cycle(_edges(_top_level)) is None


def test_no_folder_holds_more_than_15_modules() -> None:
    for folder in [SOURCE, *(p for p in SOURCE.rglob("*") if p.is_dir())]:
        if folder.name in ("__pycache__", "versions") and "migrations" in str(folder):
            continue
        modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
        assert len(modules) <= 15, folder


def test_no_module_tests_where_its_rows_live() -> None:
    """The cluster seam: only `cluster/` knows the type of rows kept on a Dask cluster."""
    for path in SOURCE.rglob("*.py"):
        if "cluster" in path.relative_to(SOURCE).parts:
            continue
        assert "ClusterRows" not in path.read_text(), path


def test_db_takes_plain_values() -> None:
    """`db/` never imports a domain module: only `core` and itself."""
    g = graph()
    for module in g.find_descendants(f"{PACKAGE}.db"):
        for imported in g.find_modules_directly_imported_by(module):
            top = _top_level(imported)
            assert top in (None, "db", "core"), f"{module} imports {imported}"


def test_no_deferred_import_of_own_modules_without_a_reason() -> None:
    """An import of the package's own modules inside a function says why on the line above.
    The command line is the exception, as a rule: each command imports its library when it runs,
    so that `--help`, completion and the fast commands load nothing else (tests/cli)."""
    for path in SOURCE.rglob("*.py"):
        if "migrations" in path.parts or "cli" in path.relative_to(SOURCE).parts:
            continue
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith(PACKAGE):
                    above = lines[inner.lineno - 2].strip()
                    same = lines[inner.lineno - 1]
                    assert above.startswith("#") or "#" in same, (
                        f"{path.relative_to(SOURCE.parent)}:{inner.lineno}: say why it is deferred"
                    )


def test_performance_rows_are_told_apart_by_kind_never_by_the_metric_name() -> None:
    """`db/tracking.py` names the kinds and their metrics; no reader matches a metric's prefix
    or tells estimated rows from realized ones by the `estimated` flag."""
    owner = SOURCE / "db" / "tracking.py"
    for path in SOURCE.rglob("*.py"):
        if "migrations" in path.parts or path == owner:
            continue
        found = re.search(
            r"metric\.(like|startswith)\(|\"(change_point|rollout):\S|estimated\.is_\(",
            path.read_text(),
        )
        assert found is None, f"{path.relative_to(SOURCE.parent)}: {found and found.group()}"
