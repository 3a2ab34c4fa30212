"""Pick the language and time zone of each request: the account's choice, else the `lang`
cookie, else Accept-Language, else French."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from portal import i18n

LANG_COOKIE = "lang"
TZ_COOKIE = "tz"


def activate_for(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    user = connection.scope.get("user")
    if user is not None:
        i18n.activate(user.locale, user.timezone)
        return
    locale = connection.cookies.get(LANG_COOKIE)
    if locale not in i18n.LOCALES:
        locale = i18n.negotiate(connection.headers.get("accept-language")) or i18n.DEFAULT_LOCALE
    # The browser's own name for its zone may be an alias (Asia/Calcutta): the same clock.
    timezone = i18n.canonical_zone(connection.cookies.get(TZ_COOKIE) or "")
    timezone = timezone or i18n.DEFAULT_TIMEZONE
    i18n.activate(locale, timezone)


class LocaleMiddleware(ASGIMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        activate_for(ASGIConnection(scope))
        await next_app(scope, receive, send)
