"""Rendered HTML kept in memory under a key that names immutable content.

A key must change whenever what it renders changes (a version number, a revision counter,
the language and time zone), so an entry never goes stale and each process may keep its
own copy: nothing is shared, nothing needs invalidating. The least recently used entry goes
first once the cache is full.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from litestar import Request
from markupsafe import Markup


class FragmentCache:
    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable) -> Any | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: Hashable, value: Any) -> Any:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return value


def render_fragment(request: Request[Any, Any, Any], template_name: str, **context: Any) -> Markup:
    engine = request.app.template_engine
    assert engine is not None
    html = engine.get_template(template_name).render(request=request, **context)
    return Markup(html)  # noqa: S704 (rendered by our autoescaping templates)
