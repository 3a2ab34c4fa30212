"""Path parameters with bounds, refused (422) before any query when out of range."""

from typing import Annotated

from litestar.params import PathParameter

MAX_ID = 2**31 - 1  # a database integer

PathId = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
Slug = Annotated[str, PathParameter(max_length=64)]
