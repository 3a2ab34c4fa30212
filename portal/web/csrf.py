"""CSRF tokens bound to the browser and to its session, renewed at login and logout, and
unsafe requests only from the portal's own pages.

A token is an HMAC, under SECRET_KEY, of two values:
- the CSRF cookie (random, HttpOnly), which names the browser: anonymous forms (login,
  sign-up) are protected without creating a session. On https it is `__Host-csrftoken`:
  Secure, Path=/, no Domain, so no other site — not even a sibling subdomain — can set it;
  `csrftoken` on http (local runs);
- the session's own secret, set at login: a token from another session, or one shown before
  the login, does not verify.
And an unsafe request's `Origin` (or, without one, its `Referer`) must be the portal's own
(BASE_URL's; on http also the address the request was sent to, for local runs under
another name): a form posted from another site, a sibling subdomain included, is refused
even with a valid token (login CSRF). A request with neither header (old clients) relies on
the token alone.
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
from typing import Any, cast
from urllib.parse import urlsplit

from litestar.connection import ASGIConnection, Request
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.enums import RequestEncodingType, ScopeType
from litestar.exceptions import PermissionDeniedException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

COOKIE = "csrftoken"
HOST_COOKIE = "__Host-csrftoken"  # on https
HEADER = "x-csrftoken"
FIELD = "_csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_CSRF = "csrf"  # the session's secret (a logged-in session has one)
SCOPE_BROWSER = "portal.csrf_browser"  # the cookie's value for this request
SCOPE_SET_COOKIE = "portal.csrf_set_cookie"  # a new value to send to the browser
_BROWSER_VALUE = re.compile(r"^[0-9a-f]{64}$")


def new_secret() -> str:
    return secrets.token_hex(32)


def cookie_name(secure: bool) -> str:
    return HOST_COOKIE if secure else COOKIE


def origin_of(url: str) -> str | None:
    """scheme://host[:port] of an address, the port only when not the scheme's default."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def _session(scope: Scope) -> dict[str, Any]:
    session = scope.get("session")
    return session if isinstance(session, dict) else {}


class CSRFMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(
        self,
        *,
        secret: str,
        exclude: tuple[str, ...],
        base_url: str,
        same_site: str = "lax",
    ) -> None:
        self.key = secret.encode()
        excluded = re.compile("|".join(exclude))
        self.should_bypass_for_scope = lambda scope: excluded.search(scope["path"]) is not None
        self.origin = origin_of(base_url)
        secure = self.origin is not None and self.origin.startswith("https:")
        self.cookie = cookie_name(secure)
        self.cookie_params: dict[str, Any] = {
            "path": "/",  # and no domain: what a __Host- cookie must have
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
        browser = request.cookies.get(self.cookie, "")
        came_with_cookie = bool(_BROWSER_VALUE.match(browser))
        if not came_with_cookie:
            browser = new_secret()
            scope[SCOPE_SET_COOKIE] = browser  # type: ignore[literal-required]
        scope[SCOPE_BROWSER] = browser  # type: ignore[literal-required]
        publish(scope, self)
        if scope["method"] not in SAFE_METHODS:  # type: ignore[typeddict-item]  # HTTP only
            if not self._from_our_pages(request):
                raise PermissionDeniedException("CSRF check failed: another origin")
            if not (came_with_cookie and await self._verified(request)):
                raise PermissionDeniedException("CSRF token verification failed")
        await next_app(scope, receive, self._send_with_cookie(scope, send))

    def _from_our_pages(self, request: Request[Any, Any, Any]) -> bool:
        """The request's Origin, else its Referer's, is ours; or it has neither."""
        origin = request.headers.get("origin")
        if origin is None:
            referer = request.headers.get("referer")
            if referer is None:
                return True  # old clients: the token alone
            origin = origin_of(referer) or "null"
        ours = {self.origin}
        if self.origin is not None and self.origin.startswith("http:"):
            ours.add(origin_of(f"http://{request.headers.get('host', '')}"))
        return origin_of(origin) in ours - {None}

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
            value = cast("str | None", scope.get(SCOPE_SET_COOKIE))
            if value and message["type"] == "http.response.start":
                cookie = Cookie(key=self.cookie, value=value, **self.cookie_params)
                MutableScopeHeaders.from_message(message).add(
                    "Set-Cookie", cookie.to_header(header="")
                )
            await send(message)

        return send_wrapper


def publish(scope: Scope, middleware: CSRFMiddleware) -> None:
    """The token forms and htmx send from now on (`csrf_input`, `csrf_token()`)."""
    scope["portal.csrf"] = middleware  # type: ignore[typeddict-unknown-key]
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
    middleware = cast("CSRFMiddleware | None", scope.get("portal.csrf"))
    if middleware is None:
        return  # a path without CSRF protection
    browser = new_secret()
    scope[SCOPE_BROWSER] = scope[SCOPE_SET_COOKIE] = browser  # type: ignore[literal-required]
    publish(scope, middleware)
