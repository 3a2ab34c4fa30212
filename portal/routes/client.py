from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from portal.web.auth import login_required
from portal.web.render import render


@get("/me", name="client_dashboard", guards=[login_required], include_in_schema=False)
async def client_dashboard(request: Request[Any, Any, Any]) -> Response[Any]:
    return render(request, "pages/me.html")


ROUTES = [client_dashboard]
