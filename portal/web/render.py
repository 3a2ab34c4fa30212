"""The one place that decides between a whole page and an htmx fragment."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Template

HTML = "text/html; charset=utf-8"


def render(
    request: Request[Any, Any, Any],
    template_name: str,
    *,
    block: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Response[Any]:
    """Render a page, or only its `{% block %}` named `block` for an htmx request.

    A URL that can answer either way says so with `Vary: HX-Request`, so caches keep both.
    """
    headers = dict(headers or {})
    if block is None:
        return Template(template_name, context=context, status_code=status_code, headers=headers)
    headers["Vary"] = "HX-Request"
    htmx = request.htmx if isinstance(request, HTMXRequest) else None
    # Boosted navigation and history restoration (the Back button) want the whole page.
    if not htmx or htmx.boosted or htmx.history_restore_request:
        return Template(template_name, context=context, status_code=status_code, headers=headers)
    engine = request.app.template_engine
    assert engine is not None
    template = engine.get_template(template_name)
    full_context = Template(template_name, context=context).create_template_context(request)
    html = "".join(template.blocks[block](template.new_context(full_context)))
    return Response(html, media_type=HTML, status_code=status_code, headers=headers)
