"""The client's daily digest of credits debited: one email an evening, whatever the number
of debits (an exchange confirmed, a late cancellation, a no-show, a question settled, an
adjustment taking credits back).

Written by the notify consumer when such an event is read: the day's digest still waiting
is written again with every debit since the last digest sent (from the ledger, which is
the truth), so it always lists them all; it leaves at DIGEST_AT in the client's zone (or
half an hour after a debit made later in the evening). Turned off with the credits
notices on /account."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from portal import i18n
from portal.accounts.tables import User
from portal.credits.presentation import change, what
from portal.credits.services import ENTRY_COLUMNS
from portal.credits.tables import Entry, EntryKind, Wallet
from portal.i18n import gettext as _
from portal.i18n import ngettext
from portal.notify.services import Email, render
from portal.notify.tables import Notification, NotificationStatus
from portal.settings import get_settings

DIGEST_AT = time(19, 0)
LATE_DELAY = timedelta(minutes=30)
KIND = "debits"


async def _debits_since(client_id: int, since: datetime) -> list[dict[str, Any]]:
    """The client's debits after `since`, oldest first, with the expert's name."""
    wallets = await Wallet.select(Wallet.id, Wallet.expert.display_name).where(
        Wallet.client == client_id
    )
    names = {row["id"]: row["expert.display_name"] for row in wallets}
    if not names:
        return []
    rows = (
        await Entry.select(*ENTRY_COLUMNS, Entry.wallet)
        .where(
            Entry.wallet.is_in(list(names))
            & (Entry.created_at > since)
            & (
                (Entry.kind == EntryKind.capture.value)
                | ((Entry.kind == EntryKind.adjust.value) & (Entry.amount < 0))
            )
        )
        .order_by(Entry.id)
    )
    return [
        {**row, "expert": names[row["wallet"]]}
        for row in rows
        if change(row["kind"], row["amount"], row["held_change"]) < 0
    ]


def _due(moment: datetime, zone: ZoneInfo) -> datetime:
    local = moment.astimezone(zone)
    evening = datetime.combine(local.date(), DIGEST_AT, zone)
    return evening if local < evening else moment + LATE_DELAY


async def debit_noted(client_id: int, moment: datetime) -> None:
    """Write (again) the client's waiting digest with every debit not told yet."""
    client = await User.objects().where(User.id == client_id).first()
    if client is None or not client.notify_credits:
        return
    told = (
        await Notification.select(Notification.created_at)
        .where(
            (Notification.user == client.id)
            & (Notification.kind == KIND)
            & (Notification.status != NotificationStatus.pending.value)
        )
        .order_by(Notification.id, ascending=False)
        .first()
    )
    since = told["created_at"] if told else datetime(2000, 1, 1, tzinfo=UTC)
    debits = await _debits_since(client.id, since)
    if not debits:
        return
    with i18n.speaking(client.locale, client.timezone):
        email = _compose(debits)
        text, html = render(email, client)
    waiting = (
        await Notification.objects()
        .where(
            (Notification.user == client.id)
            & (Notification.kind == KIND)
            & (Notification.status == NotificationStatus.pending.value)
            & (Notification.attempts == 0)
        )
        .first()
    )
    if waiting is not None:  # not sent yet: it now tells these debits too
        await Notification.update(
            {Notification.subject: email.subject, Notification.text: text, Notification.html: html}
        ).where(Notification.id == waiting.id)
        return
    await Notification(
        user=client.id,
        kind=KIND,
        key=f"{KIND}:{client.id}:{moment.timestamp():.6f}",
        to_address=client.email,
        subject=email.subject,
        text=text,
        html=html,
        next_attempt_at=_due(moment, ZoneInfo(client.timezone)),
    ).save()


def _compose(debits: list[dict[str, Any]]) -> Email:
    lines = []
    total = 0
    for debit in debits:
        moved = -change(debit["kind"], debit["amount"], debit["held_change"])
        total += moved
        credits = ngettext("%(num)d credit", "%(num)d credits", moved) % {"num": moved}
        when = i18n.format_datetime_in(debit["created_at"], i18n.current_timezone())
        said = what(debit["kind"], debit["reference"], debit["memo"])
        lines.append(f"{when} · {debit['expert']} · {said} · −{credits}")
    return Email(
        subject=ngettext("%(num)d credit debited today", "%(num)d credits debited today", total)
        % {"num": total},
        lines=[
            _("The credits debited from your balance since the last summary:"),
            *lines,
            _("Each line is in your history, with what caused it."),
        ],
        link=(_("My credits"), get_settings().base_url + "/me"),
    )
