"""The request class of the portal: htmx's, with a JSON body that cannot exhaust the stack."""

from __future__ import annotations

from typing import Any

from litestar.exceptions import ClientException
from litestar.plugins.htmx import HTMXRequest


class PortalRequest(HTMXRequest):
    async def json(self) -> Any:
        """The JSON body. One nested deeper than the decoder's recursion allows (a few bytes
        of `[[[[…`) is a body that cannot be read (400, 422 in the API), not a server error."""
        try:
            return await super().json()
        except RecursionError as exc:
            raise ClientException("The JSON body is nested too deeply.") from exc
