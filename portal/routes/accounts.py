from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import FromQuery
from litestar.plugins.flash import flash
from litestar.response import Redirect

from portal import i18n
from portal.accounts.login import (
    CodeRequired,
    LinkInvalid,
    LoginRefused,
    Throttled,
    login_attempt,
    password_change_attempt,
    signup_confirm_attempt,
)
from portal.accounts.services import user_set_email_choices, user_update_profile
from portal.accounts.signup import SignupForm, signup_request, signup_token_user
from portal.accounts.tables import Role, User
from portal.errors import DomainError, ValidationFailed
from portal.i18n import gettext as _
from portal.routes.forms import Form, client_ip, field, see_other
from portal.web import sessions
from portal.web.auth import current_user, login_required
from portal.web.deps import RedisDep
from portal.web.errors import refusal
from portal.web.locale import LANG_COOKIE, TZ_COOKIE
from portal.web.redirects import safe_next
from portal.web.render import render

ONE_YEAR = 365 * 24 * 3600


def _home_for(request: Request[Any, Any, Any], user: User) -> str:
    return request.app.route_reverse(
        "expert_dashboard" if user.role == Role.expert.value else "client_dashboard"
    )


@get("/signup", name="signup", include_in_schema=False)
async def signup_page(
    request: Request[Any, Any, Any], next: FromQuery[str | None] = None
) -> Response[Any]:
    """`next`: where to go once the account exists (the slot or pack chosen before)."""
    if current_user(request):
        return Redirect(request.app.route_reverse("account"))
    return _signup_form(request, {"next": next or ""})


def _signup_form(
    request: Request[Any, Any, Any], form: dict[str, str], refused: DomainError | None = None
) -> Response[Any]:
    """The form, again with what was typed when `refused`: its fields' errors, or why."""
    said = refusal(refused) if refused else None
    return render(
        request,
        "pages/signup.html",
        status_code=said.status if said else 200,
        headers=said.headers if said else None,
        form=form,
        errors=said.errors if said else {},
        error=said.problem if said else None,
    )


@post("/signup", name="signup_submit", include_in_schema=False)
async def signup_submit(
    request: Request[Any, Any, Any], data: Form, redis: RedisDep
) -> Response[Any]:
    """The same answer whether the email has an account or not (see accounts.signup)."""
    sizes = {"name": 200, "email": 300, "next": 2000}
    form = {name: field(data, name, size) for name, size in sizes.items()}
    signup = _signup_of(form, field(data, "password", 2000))
    try:
        email = await signup_request(redis=redis, ip=client_ip(request), form=signup)
    except (ValidationFailed, Throttled) as exc:
        return _signup_form(request, form, exc)
    return render(request, "pages/signup_sent.html", email=email)


def _signup_of(form: dict[str, str], password: str) -> SignupForm:
    return SignupForm(
        email=form["email"],
        password=password,
        name=form["name"],
        locale=i18n.current_locale(),
        timezone=i18n.current_timezone(),
        next_path=safe_next(form["next"], ""),
    )


@get("/signup/confirm", name="signup_confirm", include_in_schema=False)
async def signup_confirm_page(
    request: Request[Any, Any, Any], token: FromQuery[str] = ""
) -> Response[Any]:
    """The emailed link: the password chosen finishes the sign-up."""
    return await _confirm_page(request, token[:200])


async def _confirm_page(
    request: Request[Any, Any, Any], token: str, refused: DomainError | None = None
) -> Response[Any]:
    held = await signup_token_user(token)
    said = refusal(refused) if refused else None
    return render(
        request,
        "pages/signup_confirm.html",
        status_code=(said.status if said else 200) if held else 404,
        headers=said.headers if said else None,
        email=held.email if held else None,
        form={"token": token},
        error=said.message if said else None,
    )


@post("/signup/confirm", name="signup_confirm_submit", include_in_schema=False)
async def signup_confirm_submit(
    request: Request[Any, Any, Any], data: Form, redis: RedisDep
) -> Response[Any]:
    token, password = field(data, "token", 200), field(data, "password", 2000)
    try:
        user, next_path = await signup_confirm_attempt(
            redis=redis, token=token, password=password, ip=client_ip(request)
        )
    except LinkInvalid:
        return await _confirm_page(request, "")
    except (Throttled, LoginRefused) as exc:
        return await _confirm_page(request, token, exc)
    await sessions.login(request, redis, user.id)
    flash(request, _("Welcome! Your account is ready."), "success")
    return see_other(safe_next(next_path, request.app.route_reverse("client_dashboard")))


@get("/login", name="login", include_in_schema=False)
async def login_page(
    request: Request[Any, Any, Any], next: FromQuery[str | None] = None
) -> Response[Any]:
    user = current_user(request)
    if user:
        return Redirect(safe_next(next, _home_for(request, user)))
    return _login_page(request, {"next": next or "", "email": sessions.offered_email(request)})


def _login_page(
    request: Request[Any, Any, Any], form: dict[str, str], refused: DomainError | None = None
) -> Response[Any]:
    said = refusal(refused) if refused else None
    return render(
        request,
        "pages/login.html",
        status_code=said.status if said else 200,
        headers=said.headers if said else None,
        form=form,
        error=said.message if said else None,
        code_required=isinstance(refused, CodeRequired) or bool(form.get("code")),
    )


@post("/login", name="login_submit", include_in_schema=False)
async def login_submit(
    request: Request[Any, Any, Any], data: Form, redis: RedisDep
) -> Response[Any]:
    sizes = {"email": 300, "next": 2000, "code": 32}
    form = {name: field(data, name, size) for name, size in sizes.items()}
    password = field(data, "password", 2000)
    try:
        user = await login_attempt(
            redis=redis,
            email=form["email"],
            password=password,
            ip=client_ip(request),
            code=form["code"],
        )
    except (Throttled, CodeRequired, LoginRefused) as exc:
        if isinstance(exc, CodeRequired):
            form["code"] = ""
        return _login_page(request, form, exc)
    await sessions.login(request, redis, user.id)
    return see_other(safe_next(form["next"], _home_for(request, user)))


@post("/logout", name="logout", include_in_schema=False)
async def logout(request: Request[Any, Any, Any], redis: RedisDep) -> Response[Any]:
    await sessions.logout(request, redis)
    flash(request, _("You are logged out."), "info")
    return see_other(request.app.route_reverse("home"))


def account_page(
    request: Request[Any, Any, Any], status_code: int = 200, **context: Any
) -> Response[Any]:
    context.setdefault("profile_errors", {})
    context.setdefault("password_errors", {})
    context.setdefault("email_errors", {})
    context.setdefault("email_form", {})
    return render(request, "pages/account.html", status_code=status_code, **context)


@get("/account", name="account", guards=[login_required], include_in_schema=False)
async def account(request: Request[Any, Any, Any]) -> Response[Any]:
    return account_page(request)


@post("/account/profile", name="account_profile", guards=[login_required], include_in_schema=False)
async def account_profile(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    user = current_user(request)
    assert user is not None
    try:
        await user_update_profile(
            user=user,
            name=field(data, "name", 200),
            locale=field(data, "locale", 8),
            timezone=field(data, "timezone", 64),
        )
    except ValidationFailed as exc:
        said = refusal(exc)
        return account_page(request, said.status, profile_errors=said.errors)
    i18n.activate(user.locale, user.timezone)
    flash(request, _("Your profile is saved."), "success")
    return see_other(
        request.app.route_reverse("account"),
        cookies=[
            Cookie(key=LANG_COOKIE, value=user.locale, max_age=ONE_YEAR, samesite="lax"),
            Cookie(key=TZ_COOKIE, value=user.timezone, max_age=ONE_YEAR, samesite="lax"),
        ],
    )


@post(
    "/account/password", name="account_password", guards=[login_required], include_in_schema=False
)
async def account_password(
    request: Request[Any, Any, Any], data: Form, redis: RedisDep
) -> Response[Any]:
    user = current_user(request)
    assert user is not None
    try:
        await password_change_attempt(
            redis=redis,
            user=user,
            ip=client_ip(request),
            current=field(data, "current_password", 2000),
            new=field(data, "new_password", 2000),
            confirm=field(data, "confirm_password", 2000),
        )
    except (ValidationFailed, Throttled) as exc:
        said = refusal(exc)  # a wait is said beside the current password
        errors = {"current_password": said.problem} if said.problem else said.errors
        return account_page(request, said.status, password_errors=errors)
    await sessions.end_other_sessions(request, redis, user.id)
    flash(request, _("Your password is changed. Your other sessions are logged out."), "success")
    return see_other(request.app.route_reverse("account"))


@post("/account/emails", name="account_emails", guards=[login_required], include_in_schema=False)
async def account_emails(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    """Which reminders and notices to receive (checkboxes: absent means off)."""
    user = current_user(request)
    assert user is not None
    await user_set_email_choices(
        user=user,
        remind_bookings=field(data, "remind_bookings", 4) == "on",
        remind_deadlines=field(data, "remind_deadlines", 4) == "on",
        notify_credits=field(data, "notify_credits", 4) == "on",
    )
    flash(request, _("Your email choices are saved."), "success")
    return see_other(request.app.route_reverse("account"))


ROUTES = [
    account_emails,
    signup_page,
    signup_submit,
    signup_confirm_page,
    signup_confirm_submit,
    login_page,
    login_submit,
    logout,
    account,
    account_profile,
    account_password,
]
