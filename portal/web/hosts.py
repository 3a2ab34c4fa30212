"""Refuse requests whose Host header is not ours (Litestar's check compares the port too,
which breaks `portal run --port`); the port is ignored here."""

from __future__ import annotations

from litestar.middleware import ASGIMiddleware
from litestar.response.base import ASGIResponse
from litestar.types import ASGIApp, Receive, Scope, Send

LOOPBACK = frozenset({"127.0.0.1", "localhost", "[::1]", "testserver.local"})


def allowed_hosts(base_host: str) -> frozenset[str]:
    host = base_host.lower()
    return LOOPBACK if host in LOOPBACK or host == "::1" else frozenset({host})


def _hostname(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class AllowedHostsMiddleware(ASGIMiddleware):
    def __init__(self, hosts: frozenset[str]) -> None:
        self.hosts = hosts

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
        if _hostname(host) not in self.hosts:
            response = ASGIResponse(
                body=b'{"code":"invalid_host","detail":"invalid host header"}',
                status_code=400,
                media_type="application/json",
            )
            await response(scope, receive, send)
            return
        await next_app(scope, receive, send)
