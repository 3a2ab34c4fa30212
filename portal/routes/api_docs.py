"""`/schema`: the API's documentation as a page of the portal, read from the OpenAPI document
(served beside it at `/schema/openapi.json`). Litestar's own viewers load their scripts from
public CDNs; this page loads nothing from elsewhere and keeps the site's security policy."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.response import Template

TEMPLATE = "pages/api_docs.html"
METHODS = ("get", "post", "put", "patch", "delete")


def operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Every operation of the document, in its order: method, path, summary, description,
    whether it needs a token."""
    found = []
    for path, item in schema.get("paths", {}).items():
        for method in METHODS:
            if (operation := item.get(method)) is None:
                continue
            found.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": operation.get("summary", ""),
                    "description": operation.get("description", ""),
                    "token": bool(operation.get("security")),
                }
            )
    return found


class ApiDocsPage(OpenAPIRenderPlugin):
    def __init__(self) -> None:
        super().__init__(path="/", favicon="", style="")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        context = {
            "operations": operations(openapi_schema),
            "info": openapi_schema["info"],
            "json_url": self.get_openapi_json_route(request),
        }
        full_context = Template(TEMPLATE, context=context).create_template_context(request)
        engine = request.app.template_engine
        assert engine is not None
        return engine.get_template(TEMPLATE).render(**full_context).encode()
