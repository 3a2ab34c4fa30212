"""The dependency direction of the architecture: routes -> domains -> credits, charter,
accounts; notify -> domains; workers -> domains and notify. No two packages of `portal`
import each other, directly or through others (imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PORTAL = ROOT / "portal"


def _unit(module: str) -> str:
    """The package (portal.booking) or top-level module (portal.db) a module belongs to."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _imports(path: Path) -> set[str]:
    """The `portal` modules a file imports, anywhere in it (the project writes no relative
    imports: one would be an error here, not a blind spot)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, f"{path}: a relative import"
            found.add(node.module or "")
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("portal.")}


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in PORTAL.rglob("*.py"):
        if "piccolo_migrations" in path.parts:
            continue
        source = _unit(".".join(path.relative_to(ROOT).with_suffix("").parts))
        targets = {_unit(name) for name in _imports(path)} - {source, "portal.__init__"}
        edges.setdefault(source, set()).update(t for t in targets if t != "portal")
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_two_packages_import_each_other() -> None:
    assert cycles(graph()) == []


def test_the_finder_sees_a_cycle() -> None:
    """The check can fail: a cycle through three units is found."""
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]


def test_domains_import_neither_notify_nor_the_web() -> None:
    edges = graph()
    for domain in ("accounts", "charter", "credits", "booking", "questions", "events"):
        below = edges.get(f"portal.{domain}", set())
        assert not below & {"portal.notify", "portal.web", "portal.routes"}, (domain, below)
