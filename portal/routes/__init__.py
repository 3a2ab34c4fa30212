"""HTTP glue, one module per area. Handlers parse input, call a service, render."""

from litestar.types import ControllerRouterHandler

from portal.routes import (
    accounts,
    api,
    booking,
    calendar,
    charter,
    client,
    email_change,
    expert,
    ops,
    outbox,
    password,
    public,
    purchases,
    questions,
    timezone,
    webhooks,
)

ROUTES: list[ControllerRouterHandler] = [
    *public.ROUTES,
    *ops.ROUTES,
    *accounts.ROUTES,
    *password.ROUTES,
    *email_change.ROUTES,
    *charter.ROUTES,
    *client.ROUTES,
    expert.router,
    api.public_router,
    api.router,
    *webhooks.ROUTES,
    *purchases.ROUTES,
    *booking.ROUTES,
    *calendar.ROUTES,
    *questions.CLIENT_ROUTES,
    *outbox.ROUTES,
    *timezone.ROUTES,
]
