#!/usr/bin/env python3
"""The import graph of the icefall_kd package and its cycles.

Every ``import``/``from ... import`` of an ``icefall_kd`` module counts, at module level or
inside a function (a lazy import hides a cycle, it does not remove one), except those under
``if TYPE_CHECKING:``.

Usage (from the repository root):
  .venv/bin/python tools/import_graph.py          # prints the cycles; exit 1 if any
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Dict, List, Set

PACKAGE = "icefall_kd"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_modules(source: str, modules: Set[str]) -> Set[str]:
    """The package modules that ``source`` imports (a name imported from a package counts
    as its submodule when one exists)."""
    found: Set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                if sub in modules:
                    found.add(sub)
                elif node.module in modules:
                    found.add(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return found


def package_graph(root: Path) -> Dict[str, Set[str]]:
    """{module: modules of the package it imports}, for every .py file under root/icefall_kd.
    Package ``__init__`` modules are left out as targets: importing ``a.b`` runs ``a``'s
    ``__init__``, but those here hold no imports of their own submodules."""
    files = sorted((root / PACKAGE).rglob("*.py"))
    modules = {module_name(p, root) for p in files}
    return {module_name(p, root): imported_modules(p.read_text(), modules) - {module_name(p, root)}
            for p in files}


def find_cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    cycles: List[List[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return cycles


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    cycles = find_cycles(package_graph(root))
    for cycle in cycles:
        print("import cycle: " + " <-> ".join(cycle))
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
