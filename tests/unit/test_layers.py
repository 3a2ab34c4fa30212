"""Dependencies point down: `web/` never imports `routes/`, and a domain package imports
neither `routes/` nor `web/`. Read from the source of every module under portal/, imports
inside functions included."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

import portal

PORTAL = Path(portal.__file__).resolve().parent
DOMAINS = ("accounts", "charter", "credits", "booking", "questions")


def imports_in(source: str, package: str) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in a module of this package; `from a import b`
    names both `a` and `a.b` (b may be a module)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: the package itself, or level - 1 packages up
                parts = package.split(".")
                anchor = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


@cache
def all_imports() -> dict[str, list[tuple[int, str]]]:
    """Every module under portal/ (by its dotted name) -> its imports."""
    found = {}
    for path in sorted(PORTAL.rglob("*.py")):
        parts = ("portal", *path.relative_to(PORTAL).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        package = name if is_package else name.rpartition(".")[0]
        found[name] = list(imports_in(path.read_text(encoding="utf-8"), package))
    return found


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def offending(under: str, forbidden: tuple[str, ...]) -> list[str]:
    """`module:line imports name` for each import of `forbidden` by a module of `under`."""
    return sorted(
        {
            f"{module}:{line} imports {imported}"
            for module, imports in all_imports().items()
            if within(module, under)
            for line, imported in imports
            if any(within(imported, f) for f in forbidden)
        }
    )


def test_web_does_not_import_routes() -> None:
    assert offending("portal.web", ("portal.routes",)) == []


@pytest.mark.parametrize("domain", DOMAINS)
def test_a_domain_imports_neither_routes_nor_web(domain: str) -> None:
    assert any(within(m, f"portal.{domain}") for m in all_imports()), f"no portal.{domain}"
    assert offending(f"portal.{domain}", ("portal.routes", "portal.web")) == []


def test_every_kind_of_import_is_seen() -> None:
    """The reader misses none: plain, from, relative, and inside a function."""
    source = (
        "import portal.routes.api\n"
        "from portal import web\n"
        "from ..routes import forms\n"
        "from . import services\n"
        "def f():\n"
        "    from portal.web.render import render\n"
    )
    assert {
        (1, "portal.routes.api"),
        (2, "portal.web"),
        (3, "portal.routes.forms"),
        (4, "portal.booking.services"),
        (6, "portal.web.render"),
    } <= set(imports_in(source, "portal.booking"))


def test_the_rules_read_real_imports() -> None:
    """A rule over imports that were never read would pass for nothing: routes import web."""
    assert offending("portal.routes", ("portal.web",)) != []
