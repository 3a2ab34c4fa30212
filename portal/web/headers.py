"""Security headers on every response: pages, fragments, error pages, static files, JSON.

The Content-Security-Policy allows only the portal's own scripts and styles (htmx is served
from static/ like the rest; no inline script, event handler or style attribute in any page),
no frames of the portal elsewhere, and forms that post only here or to Stripe Checkout (the
pay button's redirect).
"""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self' https://checkout.stripe.com",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    )
)

SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
)


async def add_security_headers(message: Message, scope: Scope) -> None:
    """A `before_send` hook: it sees every response the app sends, errors included."""
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    for name, value in SECURITY_HEADERS:
        if not headers.get(name):
            headers[name] = value
