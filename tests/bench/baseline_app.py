"""The baseline for the server benchmark: a bare Litestar app answering a constant text."""

from __future__ import annotations

from litestar import Litestar, MediaType, get


@get("/", media_type=MediaType.TEXT)
async def index() -> str:
    return "ok"


app = Litestar([index])
