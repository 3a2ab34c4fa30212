"""Stripe's webhook: the raw body is verified by signature, stored once, then processed."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post

from portal.credits.purchases import event_receive
from portal.web.deps import SettingsDep


@post("/webhooks/stripe", name="stripe_webhook", include_in_schema=False, status_code=200)
async def stripe_webhook(request: Request[Any, Any, Any], settings: SettingsDep) -> Response[Any]:
    first = await event_receive(
        payload=await request.body(),
        signature=request.headers.get("stripe-signature"),
        secret=settings.webhook_secret,
    )
    return Response({"received": True, "duplicate": not first})


ROUTES = [stripe_webhook]
