"""Server-side sessions in Redis, with an id that is only ever one we issued.

Litestar's backend adopts whatever id a cookie carries and never changes it. Here:
- an id is accepted only if the store holds data for it (a planted id is ignored);
- login, logout and a password change move the session to a fresh id and delete the old
  one from the store, so a fixed or stolen id is worthless afterwards;
- an existing session is written back only if it still exists: a request still running
  when the session was ended cannot bring it back;
- an empty session is never stored and sets no cookie (anonymous visits cost nothing);
- a session remembers when its user logged in: one older than the user's last password
  change is refused (see portal.web.auth);
- login and logout renew the CSRF token, and a logged-in session holds the secret its
  tokens are bound to (see portal.web.csrf).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.middleware.session.server_side import (
    ServerSideSessionBackend,
    ServerSideSessionConfig,
)
from litestar.stores.redis import RedisStore
from litestar.types import Empty, Message, ScopeSession
from litestar.utils.dataclass import extract_dataclass_items
from redis.asyncio import Redis

from portal.web import csrf

SCOPE_SID = "portal.session_id"
SCOPE_STORED = "portal.stored_session_id"  # the id whose data was loaded from the store
SCOPE_RETIRED = "portal.retired_session_ids"
SESSION_KEY = "portal_session"  # the cookie's name on http (local runs)
HOST_SESSION_KEY = "__Host-portal_session"  # on https: Secure, Path=/, no Domain
SESSION_USER = "uid"
SESSION_AUTH_AT = "auth_at"  # when the user logged in (epoch seconds)
SESSION_ID_BYTES = 32
SESSION_MAX_AGE = 14 * 24 * 3600
STORE_NAME = "sessions"


def session_cookie_name(secure: bool) -> str:
    """On https a __Host- cookie, which no other site (a sibling subdomain) can set."""
    return HOST_SESSION_KEY if secure else SESSION_KEY


class PortalSessionBackend(ServerSideSessionBackend):
    async def load_from_connection(self, connection: ASGIConnection) -> dict[str, Any]:
        session_id = connection.cookies.get(self.config.key)
        if session_id and session_id != "null":
            store = self.config.get_store_from_app(connection.scope["app"])
            data = await self.get(session_id, store=store)
            if data is not None:
                connection.scope[SCOPE_SID] = session_id  # type: ignore[literal-required]
                connection.scope[SCOPE_STORED] = session_id  # type: ignore[literal-required]
                return self.deserialize_data(data)
        return {}

    def get_session_id(self, connection: ASGIConnection) -> str:
        session_id = cast("str | None", connection.scope.get(SCOPE_SID))
        if not session_id:
            session_id = self.generate_session_id()
            connection.scope[SCOPE_SID] = session_id  # type: ignore[literal-required]
        return session_id

    async def store_in_message(
        self, scope_session: ScopeSession, message: Message, connection: ASGIConnection
    ) -> None:
        store = self.config.get_store_from_app(connection.scope["app"])
        retired = cast("Sequence[str]", connection.scope.get(SCOPE_RETIRED, ()))
        for session_id in retired:
            await self.delete(session_id, store=store)
        had_cookie = bool(connection.cookies.get(self.config.key))
        stored = cast("str | None", connection.scope.get(SCOPE_STORED))
        if scope_session is Empty or not scope_session:
            if stored and stored not in retired:
                await self.delete(stored, store=store)
            if had_cookie:
                MutableScopeHeaders.from_message(message).add(
                    "Set-Cookie",
                    Cookie(
                        value="null", key=self.config.key, expires=0, **self._cookie_params()
                    ).to_header(header=""),
                )
            return
        session_id = self.get_session_id(connection)
        if session_id == stored and isinstance(store, PortalRedisStore):
            data = self.serialize_data(scope_session, connection.scope)
            if not await store.set_existing(session_id, data, expires_in=self.config.max_age):
                return  # ended meanwhile (logout, password change): stays ended
            MutableScopeHeaders.from_message(message).add(
                "Set-Cookie",
                Cookie(value=session_id, key=self.config.key, **self._cookie_params()).to_header(
                    header=""
                ),
            )
            return
        await super().store_in_message(scope_session, message, connection)

    def _cookie_params(self) -> dict[str, Any]:
        return dict(
            extract_dataclass_items(self.config, exclude_none=True, include=Cookie.__dict__.keys())
        )


class PortalRedisStore(RedisStore):
    async def set_existing(self, key: str, value: bytes, expires_in: int) -> bool:
        """Overwrite a value only if it is still there (Redis SET XX)."""
        return bool(await self._redis.set(self._make_key(key), value, ex=expires_in, xx=True))


@dataclass
class PortalSessionConfig(ServerSideSessionConfig):
    _backend_class = PortalSessionBackend


def _rotate(connection: ASGIConnection) -> str:
    """Give this session a fresh id; the old one is deleted when the response goes out."""
    old = connection.scope.get(SCOPE_SID)
    if old:
        connection.scope.setdefault(SCOPE_RETIRED, []).append(old)  # type: ignore[misc]
    session_id = secrets.token_hex(SESSION_ID_BYTES)
    connection.scope[SCOPE_SID] = session_id  # type: ignore[literal-required]
    return session_id


def _user_sessions_key(user_id: int) -> str:
    return f"portal:user-sessions:{user_id}"


async def login(request: Request, redis: Redis, user_id: int) -> None:
    """Start an authenticated session under a new id (no session fixation)."""
    session_id = _rotate(request)
    request.session.pop(SESSION_USER, None)
    request.session[SESSION_USER] = user_id
    request.session[SESSION_AUTH_AT] = time.time()
    csrf.renew(request, logged_in=True)
    key = _user_sessions_key(user_id)
    await redis.sadd(key, session_id)  # type: ignore[misc]
    await redis.expire(key, SESSION_MAX_AGE)


async def logout(request: Request, redis: Redis) -> None:
    """End the session server-side: its data is deleted from the store."""
    user_id = request.session.get(SESSION_USER)
    session_id = cast("str | None", request.scope.get(SCOPE_SID))
    if user_id is not None and session_id:
        await redis.srem(_user_sessions_key(user_id), session_id)  # type: ignore[misc]
    _rotate(request)  # whatever is stored next (a flash message) lives under a new id
    request.session.clear()
    csrf.renew(request, logged_in=False)


SESSION_EMAIL = "login_email"


def offer_email(request: Request, email: str) -> None:
    """The address the next login form shows (once), after a reset that logged out."""
    request.session[SESSION_EMAIL] = email


def offered_email(request: Request) -> str:
    """The address offered for the login form, taken: shown once."""
    return str(request.session.pop(SESSION_EMAIL, "") or "")


async def end_other_sessions(request: Request, redis: Redis, user_id: int) -> None:
    """After a password change: this browser stays in (under a new id), every other is out."""
    store = request.app.stores.get(STORE_NAME)
    key = _user_sessions_key(user_id)
    for member in await redis.smembers(key):  # type: ignore[misc]
        await store.delete(member.decode() if isinstance(member, bytes) else member)
    await redis.delete(key)
    await login(request, redis, user_id)
