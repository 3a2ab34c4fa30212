"""Reads of the emails written: the expert's failures, the demo's outbox."""

from __future__ import annotations

from portal.errors import NotFound
from portal.notify.tables import Notification, NotificationStatus

OUTBOX_SHOWN = 100


async def notifications_failed_count(*, user_id: int) -> int:
    """Emails to this user that could not be sent."""
    return await Notification.count().where(
        (Notification.user == user_id) & (Notification.status == NotificationStatus.failed.value)
    )


async def notifications_latest(*, limit: int = OUTBOX_SHOWN) -> list[Notification]:
    """The last emails written, to anyone, the latest first."""
    return await Notification.objects().order_by(Notification.id, ascending=False).limit(limit)


async def notification_get(*, notification_id: int) -> Notification:
    notification = await Notification.objects().where(Notification.id == notification_id).first()
    if notification is None:
        raise NotFound()
    return notification
