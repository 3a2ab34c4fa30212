"""Changing the account's email address: ask from /account, confirm from the link."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.plugins.flash import flash

from portal.accounts.email_change import (
    email_change_confirm,
    email_change_of,
    email_change_request,
)
from portal.accounts.throttle import Throttled
from portal.errors import ValidationFailed
from portal.i18n import gettext as _
from portal.routes.accounts import account_page
from portal.routes.forms import Form, client_ip, field, see_other, translated
from portal.web.auth import current_user, login_required
from portal.web.deps import RedisDep
from portal.web.errors import refusal
from portal.web.render import render

TOKEN_MAX = 200


@post("/account/email", name="account_email", guards=[login_required], include_in_schema=False)
async def account_email(
    request: Request[Any, Any, Any], data: Form, redis: RedisDep
) -> Response[Any]:
    user = current_user(request)
    assert user is not None
    new_email = field(data, "new_email", 300)
    try:
        sent_to = await email_change_request(
            redis=redis,
            user=user,
            new_email=new_email,
            password=field(data, "password", 2000),
            ip=client_ip(request),
        )
    except (ValidationFailed, Throttled) as exc:
        said = refusal(exc)
        errors = said.errors or {"password": said.message}  # a wait is said by the password
        return account_page(
            request, said.status, email_errors=errors, email_form={"new_email": new_email}
        )
    flash(
        request,
        _("A link is on its way to %(email)s: your address changes when you open it.")
        % {"email": sent_to},
        "success",
    )
    return see_other(request.app.route_reverse("account"))


def _confirm_page(
    request: Request[Any, Any, Any],
    token: str,
    new_email: str | None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response[Any]:
    return render(
        request,
        "pages/email_change.html",
        status_code=status_code if new_email or errors else 404,
        token=token,
        new_email=new_email,
        errors=errors or {},
    )


@get("/account/email/{token:str}", name="account_email_confirm", include_in_schema=False)
async def confirm_page(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[Any]:
    """The link's page: a button, so that a mail scanner opening links changes nothing."""
    change = await email_change_of(token[:TOKEN_MAX])
    return _confirm_page(request, token[:TOKEN_MAX], change.new_email if change else None)


@post("/account/email/{token:str}", name="account_email_confirm_submit", include_in_schema=False)
async def confirm_submit(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[Any]:
    try:
        user = await email_change_confirm(token[:TOKEN_MAX])
    except ValidationFailed as exc:
        return _confirm_page(request, "", None, translated(exc.errors), 409)
    if user is None:
        return _confirm_page(request, "", None)
    flash(request, _("Your account now uses %(email)s.") % {"email": user.email}, "success")
    signed_in = current_user(request)
    return see_other(request.app.route_reverse("account" if signed_in else "login"))


ROUTES = [account_email, confirm_page, confirm_submit]
