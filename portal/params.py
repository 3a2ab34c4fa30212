"""Parameters with bounds, refused (422) before any query when out of range: an id beyond
what the database stores would otherwise reach it (SQLite cannot bind integers beyond 64
bits, PostgreSQL refuses more than 32 for an integer column)."""

from typing import Annotated

import msgspec
from litestar.params import PathParameter, QueryParameter

from portal.validation import MAX_ID

PathId = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
QueryId = Annotated[int | None, QueryParameter(ge=1, le=MAX_ID)]  # optional
Slug = Annotated[str, PathParameter(max_length=64)]
# In JSON bodies: an id, and any other whole number that is stored or compared in a query.
JsonId = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]
