"""CSRF tokens bound to the browser and to its session, renewed at login and logout.

A token is an HMAC, under SECRET_KEY, of two values:
- the `csrftoken` cookie (random, HttpOnly), which names the browser: anonymous forms (login,
  sign-up) are protected without creating a session;
- the session's own secret, set at login: a token from another session, or one shown before
  the login, does not verify.
Login and logout give the browser a new cookie (and login a new session secret), so every
token shown before stops working; a page still open gets the "stale form" page (403) that
offers to reload it. Unsafe requests carry the token in the form field `_csrf_token` or the
header `x-csrftoken` (htmx sends it: `hx-headers` on <body>). The JSON API (bearer tokens,
never a cookie) and the signed Stripe webhook need none.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from litestar.connection import ASGIConnection, Request
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.enums import RequestEncodingType, ScopeType
from litestar.exceptions import PermissionDeniedException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

COOKIE = "csrftoken"
HEADER = "x-csrftoken"
FIELD = "_csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_CSRF = "csrf"  # the session's secret (a logged-in session has one)
SCOPE_BROWSER = "portal.csrf_browser"  # the cookie's value for this request
SCOPE_SET_COOKIE = "portal.csrf_set_cookie"  # a new value to send to the browser
_BROWSER_VALUE = re.compile(r"^[0-9a-f]{64}$")


def new_secret() -> str:
    return secrets.token_hex(32)


def _session(scope: Scope) -> dict[str, Any]:
    session = scope.get("session")
    return session if isinstance(session, dict) else {}


class CSRFMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(
        self, *, secret: str, exclude: tuple[str, ...], secure: bool, same_site: str = "lax"
    ) -> None:
        self.key = secret.encode()
        excluded = re.compile("|".join(exclude))
        self.should_bypass_for_scope = lambda scope: excluded.search(scope["path"]) is not None
        self.cookie_params: dict[str, Any] = {
            "path": "/",
            "secure": secure,
            "httponly": True,
            "samesite": same_site,
        }

    def token(self, scope: Scope) -> str:
        browser = scope[SCOPE_BROWSER]  # type: ignore[literal-required]
        bound = f"csrf:{browser}:{_session(scope).get(SESSION_CSRF, '')}"
        return hmac.new(self.key, bound.encode(), hashlib.sha256).hexdigest()

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        request: Request[Any, Any, Any] = Request(scope, receive)
        browser = request.cookies.get(COOKIE, "")
        came_with_cookie = bool(_BROWSER_VALUE.match(browser))
        if not came_with_cookie:
            browser = new_secret()
            scope[SCOPE_SET_COOKIE] = browser  # type: ignore[literal-required]
        scope[SCOPE_BROWSER] = browser  # type: ignore[literal-required]
        publish(scope, self)
        unsafe = scope["method"] not in SAFE_METHODS
        if unsafe and not (came_with_cookie and await self._verified(request)):
            raise PermissionDeniedException("CSRF token verification failed")
        await next_app(scope, receive, self._send_with_cookie(scope, send))

    async def _verified(self, request: Request[Any, Any, Any]) -> bool:
        expected = self.token(request.scope).encode()

        def matches(value: Any) -> bool:
            return isinstance(value, str) and hmac.compare_digest(value.encode(), expected)

        if matches(request.headers.get(HEADER)):
            return True
        content_type, _ = request.content_type
        if content_type in (RequestEncodingType.URL_ENCODED, RequestEncodingType.MULTI_PART):
            return matches((await request.form()).get(FIELD))
        return False

    def _send_with_cookie(self, scope: Scope, send: Send) -> Send:
        async def send_wrapper(message: Message) -> None:
            value = scope.get(SCOPE_SET_COOKIE)  # type: ignore[misc]
            if value and message["type"] == "http.response.start":
                cookie = Cookie(key=COOKIE, value=value, **self.cookie_params)
                MutableScopeHeaders.from_message(message).add(
                    "Set-Cookie", cookie.to_header(header="")
                )
            await send(message)

        return send_wrapper


def publish(scope: Scope, middleware: CSRFMiddleware) -> None:
    """The token forms and htmx send from now on (`csrf_input`, `csrf_token()`)."""
    scope["portal.csrf"] = middleware  # type: ignore[literal-required]
    ScopeState.from_scope(scope).csrf_token = middleware.token(scope)


def renew(connection: ASGIConnection[Any, Any, Any, Any], *, logged_in: bool) -> None:
    """From this response on, a new token: a new browser value, and a new secret in the
    session when it is a logged-in one. Every token shown before no longer verifies."""
    scope = connection.scope
    session = _session(scope)
    if logged_in:
        session[SESSION_CSRF] = new_secret()
    else:
        session.pop(SESSION_CSRF, None)
    middleware = scope.get("portal.csrf")  # type: ignore[misc]
    if middleware is None:
        return  # a path without CSRF protection
    browser = new_secret()
    scope[SCOPE_BROWSER] = scope[SCOPE_SET_COOKIE] = browser  # type: ignore[literal-required]
    publish(scope, middleware)
