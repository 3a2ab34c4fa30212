"""The demo's outbox: the emails the portal has written, to read in the browser (only with
DEMO=1, as `portal run --demo` sets: they hold everyone's messages)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from portal.errors import N_, NotFound
from portal.notify.selectors import notification_get, notifications_latest
from portal.params import PathId
from portal.web.deps import SettingsDep
from portal.web.render import render

# What became of each email, in the reader's words.
STATUSES = {
    "pending": N_("waiting to leave"),
    "sending": N_("being sent"),
    "sent": N_("sent"),
    "failed": N_("failed, tried again later"),
}


def _demo_only(settings: Any) -> None:
    if not settings.demo:
        raise NotFound()


@get("/outbox", name="outbox", include_in_schema=False)
async def outbox(request: Request[Any, Any, Any], settings: SettingsDep) -> Response[Any]:
    _demo_only(settings)
    emails = await notifications_latest()
    return render(request, "pages/outbox.html", emails=emails, shown=None, statuses=STATUSES)


@get("/outbox/{notification_id:int}", name="outbox_email", include_in_schema=False)
async def outbox_email(
    request: Request[Any, Any, Any], notification_id: PathId, settings: SettingsDep
) -> Response[Any]:
    _demo_only(settings)
    shown = await notification_get(notification_id=notification_id)
    emails = await notifications_latest()
    return render(request, "pages/outbox.html", emails=emails, shown=shown, statuses=STATUSES)


ROUTES = [outbox, outbox_email]
