"""Small helpers shared by form handlers."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.params import URLEncodedBody
from litestar.response import Redirect
from litestar.status_codes import HTTP_303_SEE_OTHER

from portal.i18n import gettext as _

Form = URLEncodedBody[dict[str, Any]]


def field(data: dict[str, Any], name: str, max_length: int = 10_000) -> str:
    """A form field as one string (a repeated field keeps its first value), bounded."""
    value = data.get(name, "")
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value)[:max_length].replace("\x00", "")  # NUL: no database stores it


def translated(errors: dict[str, str]) -> dict[str, str]:
    return {name: _(message) for name, message in errors.items()}


def client_ip(request: Request[Any, Any, Any]) -> str:
    """The visitor's address. Behind proxies named in TRUSTED_PROXIES, the last address of
    X-Forwarded-For that is not one of them (a client can prepend anything, not append)."""
    peer = request.client.host if request.client else "unknown"
    trusted = request.app.state.settings.trusted_proxies
    if peer not in trusted:
        return peer
    forwarded = [a.strip() for a in request.headers.get("x-forwarded-for", "").split(",")]
    for address in reversed(forwarded):
        if address and address not in trusted:
            return address
    return peer


def see_other(path: str, **kwargs: Any) -> Redirect:
    """After a form post: the browser follows with a GET (post/redirect/get)."""
    return Redirect(path, status_code=HTTP_303_SEE_OTHER, **kwargs)
