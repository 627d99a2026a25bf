"""The package's import graph has no cycles (tools/import_graph.py), checked on the real tree
and, as a control, on small graphs and sources where the answer is known."""

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("import_graph", REPO / "tools" / "import_graph.py")
import_graph = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(import_graph)


def test_the_package_has_no_import_cycle():
    graph = import_graph.package_graph(REPO)
    assert "icefall_kd.model.transducer" in graph  # the walk found the package
    assert import_graph.find_cycles(graph) == []


def test_cycles_are_found_in_a_graph_that_has_them():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert import_graph.find_cycles(graph) == [["a", "b", "c"]]
    assert import_graph.find_cycles({"a": {"b"}, "b": set()}) == []


def test_lazy_imports_count_and_type_checking_imports_do_not():
    modules = {"pkg.x", "pkg.y", "pkg.z", "pkg"}
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from pkg.z import Z\n"
        "def f():\n    from pkg.x import thing\n"
        "from pkg import y\n"
    )
    assert import_graph.imported_modules(source, modules) == {"pkg.x", "pkg.y"}
