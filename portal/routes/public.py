from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.response import File

from portal import i18n
from portal.accounts.services import user_set_locale
from portal.charter.services import published_experts
from portal.routes.forms import Form, field, see_other
from portal.web import STATIC_DIR
from portal.web.auth import current_user
from portal.web.locale import LANG_COOKIE
from portal.web.redirects import safe_next
from portal.web.render import render

ONE_YEAR = 365 * 24 * 3600


@get("/", name="home", include_in_schema=False)
async def home(request: Request[Any, Any, Any]) -> Response[Any]:
    return render(request, "pages/home.html", experts=await published_experts())


@post("/lang", name="set_language", include_in_schema=False)
async def set_language(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    locale = field(data, "locale")
    if locale not in i18n.LOCALES:
        locale = i18n.DEFAULT_LOCALE
    user = current_user(request)
    if user is not None:
        await user_set_locale(user=user, locale=locale)
    return see_other(
        safe_next(field(data, "next"), request.app.route_reverse("home")),
        cookies=[Cookie(key=LANG_COOKIE, value=locale, max_age=ONE_YEAR, samesite="lax")],
    )


@get("/favicon.ico", name="favicon", include_in_schema=False, cache=86400)
async def favicon() -> File:
    return File(STATIC_DIR / "img" / "favicon.svg", media_type="image/svg+xml")


ROUTES = [home, set_language, favicon]
