"""The baseline for the charter page: a bare Litestar app rendering a Jinja page of about
the same size (BARE_PAGE_BYTES, set by the benchmark), with no database and no middleware."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Litestar, get
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template.config import TemplateConfig

TEMPLATES = Path(__file__).parent / "templates"
TARGET_BYTES = int(os.environ.get("BARE_PAGE_BYTES", "10000"))
ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True))


def _rows(count: int) -> list[dict[str, Any]]:
    return [
        {
            "name": f"{15 * (n % 3 + 1)} min",
            "credits": n % 5 + 1,
            "price": f"{40 * (n % 5 + 1)},00 €",
            "note": "non proposé" if n % 4 == 0 else f"{n % 5 + 1} crédits",
        }
        for n in range(count)
    ]


def _size(count: int) -> int:
    return len(ENV.get_template("bare_page.html").render(title="Alice Expert", rows=_rows(count)))


def _rows_for_target() -> list[dict[str, Any]]:
    empty, ten = _size(0), _size(10)
    per_row = max(1, (ten - empty) // 10)
    return _rows(max(0, (TARGET_BYTES - empty) // per_row))


ROWS = _rows_for_target()


@get("/")
async def page() -> Template:
    return Template("bare_page.html", context={"title": "Alice Expert", "rows": ROWS})


app = Litestar(
    [page], template_config=TemplateConfig(instance=JinjaTemplateEngine.from_environment(ENV))
)
