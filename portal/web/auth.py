"""Who is asking: a session user on pages, a bearer token on the JSON API (never a cookie,
which is why the API needs no CSRF token), and guards for handlers."""

from __future__ import annotations

import re
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from portal.accounts.services import expert_for_user, token_user, user_by_id
from portal.accounts.tables import Expert, Role, User
from portal.errors import NotFound
from portal.web import csrf
from portal.web.sessions import SESSION_AUTH_AT, SESSION_USER

API_PREFIX = "/api/"
JSON_PREFIXES = (API_PREFIX, "/webhooks/")


def is_api(scope: Scope) -> bool:
    """Answered in JSON (errors included): the API and the webhooks."""
    return scope["path"].startswith(JSON_PREFIXES)


def current_user(connection: ASGIConnection[Any, Any, Any, Any]) -> User | None:
    return connection.scope.get("user")


def signed_in_user(connection: ASGIConnection[Any, Any, Any, Any]) -> User:
    """The logged-in user, behind `login_required`."""
    user = current_user(connection)
    assert user is not None
    return user


class AuthMiddleware(ASGIMiddleware):
    def __init__(self, exclude_path_pattern: tuple[str, ...] = ()) -> None:
        # By the request's path (static files are one route for many paths).
        excluded = re.compile("|".join(exclude_path_pattern)) if exclude_path_pattern else None
        self.should_bypass_for_scope = (
            (lambda scope: excluded.search(scope["path"]) is not None) if excluded else None
        )

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        user: User | None = None
        if is_api(scope):
            connection: ASGIConnection[Any, Any, Any, Any] = ASGIConnection(scope)
            scheme, _, token = connection.headers.get("authorization", "").partition(" ")
            if scheme.lower() == "bearer" and token:
                user = await token_user(token.strip())
                if user is None:
                    raise NotAuthorizedException("invalid_token")
            scope["auth"] = "token" if user else None
        else:
            session = scope.get("session") or {}
            user_id = session.get(SESSION_USER) if isinstance(session, dict) else None
            if user_id is not None and isinstance(session, dict):
                user = await user_by_id(user_id)
                if user is None or _older_than_password(session, user):
                    user = None
                    session.clear()  # a deleted account, or logged in before a password change
                elif csrf.SESSION_CSRF not in session:  # logged in before tokens were bound
                    session[csrf.SESSION_CSRF] = csrf.new_secret()
            scope["auth"] = "session" if user else None
        scope["user"] = user
        await next_app(scope, receive, send)


def _older_than_password(session: dict[str, Any], user: User) -> bool:
    return float(session.get(SESSION_AUTH_AT, 0)) < user.password_changed_at.timestamp()


async def current_expert(connection: ASGIConnection[Any, Any, Any, Any]) -> Expert:
    """The expert the logged-in user is (behind `expert_required`); else not found."""
    user = current_user(connection)
    expert = await expert_for_user(user) if user else None
    if expert is None:
        raise NotFound()
    return expert


def login_required(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if current_user(connection) is None:
        raise NotAuthorizedException("login_required")


def expert_required(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    user = current_user(connection)
    if user is None:
        raise NotAuthorizedException("login_required")
    if user.role != Role.expert.value:
        raise PermissionDeniedException("expert_only")
