from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from portal.accounts.services import expert_for_user
from portal.errors import NotFound
from portal.web.auth import current_user, expert_required
from portal.web.render import render


@get("/expert", name="expert_dashboard", guards=[expert_required], include_in_schema=False)
async def expert_dashboard(request: Request[Any, Any, Any]) -> Response[Any]:
    user = current_user(request)
    assert user is not None
    expert = await expert_for_user(user)
    if expert is None:
        raise NotFound()
    return render(request, "pages/expert/dashboard.html", expert=expert)


ROUTES = [expert_dashboard]
