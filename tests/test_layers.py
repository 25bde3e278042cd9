"""The structure of ``src/pvtt``: the import graph between its packages and top-level modules has no cycle,
counting imports inside functions too (a lazy import running back up is still a circle in the design)."""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pvtt

ROOT = Path(pvtt.__file__).parent


def _unit(module: str) -> str:
    """``pvtt.propagate.warp`` -> ``propagate``: the package or top-level module an import lands in."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "pvtt"


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in ROOT.rglob("*.py"):
        here = _unit(".".join(("pvtt",) + path.relative_to(ROOT).with_suffix("").parts))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("pvtt."):
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("pvtt.")]
            else:
                continue
            graph[here].update(_unit(t) for t in targets if _unit(t) != here)
    return graph


def test_the_packages_import_each_other_without_a_cycle():
    graph = import_graph()
    assert {"config", "propagate", "insert", "models", "weights"} <= set(graph)  # the scan sees the tree
    assert "config" in graph["weights"] and "propagate" in graph["weights"]  # edges inside functions count
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise AssertionError(f"import cycle between pvtt packages: {' -> '.join(exc.args[1])}") from None
    # the lower layers come before what builds on them
    assert order.index("models") < order.index("segment") < order.index("config") < order.index("weights")
    assert order.index("compose") < order.index("insert") and order.index("compose") < order.index("propagate")


def test_a_cycle_would_be_found(monkeypatch, tmp_path):
    """The check itself: a function-level import from models back up to config is reported."""
    (tmp_path / "models").mkdir()
    (tmp_path / "config.py").write_text("from pvtt.models import x\n")
    (tmp_path / "models" / "__init__.py").write_text("def f():\n    from pvtt.config import y\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    try:
        list(TopologicalSorter(import_graph()).static_order())
    except CycleError:
        return
    raise AssertionError("the cycle models <-> config was not found")
