"""Forgotten passwords: ask for a link, open it, choose a new password."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.plugins.flash import flash

from portal.accounts.reset import reset_finish, reset_request, reset_user
from portal.accounts.throttle import Throttled
from portal.errors import N_, ValidationFailed
from portal.i18n import gettext as _
from portal.routes.forms import Form, client_ip, field, see_other, translated
from portal.web import sessions
from portal.web.deps import RedisDep
from portal.web.errors import refusal
from portal.web.render import render

TOKEN_MAX = 200


@get("/password/forgot", name="password_forgot", include_in_schema=False)
async def forgot_page(request: Request[Any, Any, Any]) -> Response[Any]:
    return render(request, "pages/password_forgot.html", form={}, errors={}, error=None)


@post("/password/forgot", name="password_forgot_submit", include_in_schema=False)
async def forgot_submit(
    request: Request[Any, Any, Any], data: Form, redis: RedisDep
) -> Response[Any]:
    """The same answer whether the email has an account or not."""
    form = {"email": field(data, "email", 300)}
    if not form["email"].strip():
        errors = translated({"email": N_("Enter your email address.")})
        return render(
            request,
            "pages/password_forgot.html",
            status_code=422,
            form=form,
            errors=errors,
            error=None,
        )
    try:
        email = await reset_request(redis=redis, ip=client_ip(request), email=form["email"])
    except Throttled as exc:
        said = refusal(exc)
        return render(
            request,
            "pages/password_forgot.html",
            status_code=said.status,
            headers=said.headers,
            form=form,
            errors={},
            error=said.message,
        )
    return render(request, "pages/password_sent.html", email=email)


async def _reset_page(
    request: Request[Any, Any, Any],
    token: str,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response[Any]:
    user = await reset_user(token)
    return render(
        request,
        "pages/password_reset.html",
        status_code=status_code if user else 404,
        token=token,
        email=user.email if user else None,
        errors=errors or {},
    )


@get("/password/reset/{token:str}", name="password_reset", include_in_schema=False)
async def reset_page(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[Any]:
    return await _reset_page(request, token[:TOKEN_MAX])


@post("/password/reset/{token:str}", name="password_reset_submit", include_in_schema=False)
async def reset_submit(
    request: Request[Any, Any, Any], token: FromPath[str], data: Form, redis: RedisDep
) -> Response[Any]:
    token = token[:TOKEN_MAX]
    try:
        user = await reset_finish(
            token=token,
            password=field(data, "password", 2000),
            confirm=field(data, "confirm", 2000),
        )
    except ValidationFailed as exc:
        return await _reset_page(request, token, translated(exc.errors), 422)
    if user is None:
        return await _reset_page(request, "")
    await sessions.logout(request, redis)
    sessions.offer_email(request, user.email)  # the login form comes filled in
    flash(request, _("Your new password is saved. Log in with it."), "success")
    return see_other(request.app.route_reverse("login"))


ROUTES = [forgot_page, forgot_submit, reset_page, reset_submit]
