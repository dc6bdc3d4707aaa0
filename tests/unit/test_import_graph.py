"""The import graph of mrs_jobs: no cycles, and the layering ARCHITECTURE.md draws.

Built from the source with ``ast`` (nothing is imported), counting every import a module
makes, the lazy ones inside functions too: a cycle through a lazy import is still two modules
that cannot be understood, or moved, one without the other. Imports under
``if TYPE_CHECKING:`` are left out (they never run).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import mrs_jobs

PACKAGE = Path(mrs_jobs.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_only(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_names(name: str, path: Path) -> set[str]:
    """Every dotted name an import statement of the module names (relative ones resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking_only(node):
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return found


def _edges(name: str, path: Path) -> set[str]:
    """The mrs_jobs modules ``name`` imports (``from pkg import x`` counts x if a module)."""
    out: set[str] = set()
    for imported in _imported_names(name, path):
        while imported and imported not in MODULES:
            imported = imported.rpartition(".")[0]
        if imported and imported != name:
            out.add(imported)
    return out


GRAPH: dict[str, set[str]] = {name: _edges(name, path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
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
    return found


def test_the_graph_sees_the_package() -> None:
    assert "mrs_jobs.store.dialect" in GRAPH["mrs_jobs.store.jobs"]
    assert "mrs_jobs.cli.admin_clusters" in GRAPH["mrs_jobs.cli.admin"]
    # a lazy import inside a function counts
    assert "mrs_jobs.store.migrate" in GRAPH["mrs_jobs.store.db"]


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    assert _cycles(GRAPH) == []


def test_engines_never_import_the_supervisor() -> None:
    """Engines turn a job into a launch and read it back; the supervisor drives them."""
    reached = {
        (name, target)
        for name, targets in GRAPH.items()
        if name.startswith("mrs_jobs.engines")
        for target in targets
        if target == "mrs_jobs.supervisor" or target.startswith("mrs_jobs.supervisor.")
    }
    assert reached == set()


def test_storage_stands_below_engines_and_services() -> None:
    """Where data lives (object stores) is used by engines and services, and uses neither."""
    reached = {
        (name, target)
        for name, targets in GRAPH.items()
        if name.startswith("mrs_jobs.storage")
        for target in targets
        if not target.startswith(("mrs_jobs.storage", "mrs_jobs.domain"))
    }
    assert reached == set()


@pytest.mark.parametrize("name", sorted(n for n in MODULES if ".migrations" not in n))
def test_every_module_imports(name: str) -> None:
    importlib.import_module(name)
