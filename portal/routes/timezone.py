"""The time zone pages are shown in: the browser's, found on the first visit (see
static/js/portal.js: kept in the `tz` cookie, then the account's at sign-up), or the one the
visitor picks when the page offers their device's zone."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.datastructures import Cookie

from portal import i18n
from portal.accounts.services import user_set_timezone
from portal.routes.forms import Form, field, see_other
from portal.web.auth import current_user
from portal.web.locale import TZ_COOKIE
from portal.web.redirects import safe_next

ONE_YEAR = 365 * 24 * 3600


@post("/timezone", name="set_timezone", include_in_schema=False)
async def set_timezone(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    """Show times in this zone from now on (the account's too, when logged in)."""
    zone = i18n.canonical_zone(field(data, "timezone", 64)) or i18n.current_timezone()
    user = current_user(request)
    if user is not None:
        await user_set_timezone(user=user, timezone=zone)
    return see_other(
        safe_next(field(data, "next"), request.app.route_reverse("home")),
        cookies=[Cookie(key=TZ_COOKIE, value=zone, max_age=ONE_YEAR, samesite="lax")],
    )


ROUTES = [set_timezone]
