"""Where a redirect may lead."""

from __future__ import annotations


def safe_next(target: str | None, default: str) -> str:
    """Only a path on this site: never another host (no open redirect)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return default
