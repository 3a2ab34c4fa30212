"""The client's daily digest of credits debited: one email an evening, whatever the number
of debits (an exchange confirmed, a late cancellation, a no-show, a question settled, an
adjustment taking credits back), with what was given back or added in the same time.

Written by the notify consumer when such an event is read: the day's digest still waiting
is written again with every debit since the last digest sent (from the ledger, which is
the truth), so it always lists them all; it leaves at DIGEST_AT in the client's zone (or
half an hour after a debit made later in the evening). Turned off with the credits
notices on /account."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from piccolo.query.functions.aggregate import Count, Sum

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


DIGEST_LINES = 50  # debits listed one by one; the others counted, in the history


@dataclass(frozen=True, slots=True)
class Debits:
    """The client's debits since the last digest: how many, the credits in all, and the
    first DIGEST_LINES of them (oldest first, with the expert's name)."""

    count: int
    credits: int
    first: list[dict[str, Any]]
    # Credits given back or added in the same time (a contested no-show accepted, a gift):
    # the first DIGEST_LINES, so that a debit undone since reads as undone.
    given: list[dict[str, Any]] = field(default_factory=list)


async def _debits_since(client_id: int, since: datetime) -> Debits:
    wallets = await Wallet.select(Wallet.id, Wallet.expert.display_name).where(
        Wallet.client == client_id
    )
    names = {row["id"]: row["expert.display_name"] for row in wallets}
    if not names:
        return Debits(0, 0, [])
    # A debit: a capture that spent credits, or an adjustment that took some back.
    debit: Any = (
        Entry.wallet.is_in(list(names))
        & (Entry.created_at > since)
        & (
            ((Entry.kind == EntryKind.capture.value) & (Entry.held_change < 0))
            | ((Entry.kind == EntryKind.adjust.value) & (Entry.amount < 0))
        )
    )
    first = (
        await Entry.select(*ENTRY_COLUMNS, Entry.wallet)
        .where(debit)
        .order_by(Entry.id)
        .limit(DIGEST_LINES)
    )
    if len(first) < DIGEST_LINES:
        credits = sum(-change(row["kind"], row["amount"], row["held_change"]) for row in first)
        count = len(first)
    else:  # many: counted by the database rather than read one by one
        captured = await Entry.select(Sum(Entry.held_change), Count()).where(
            debit & (Entry.kind == EntryKind.capture.value)
        )
        adjusted = await Entry.select(Sum(Entry.amount), Count()).where(
            debit & (Entry.kind == EntryKind.adjust.value)
        )
        credits = -((captured[0]["sum"] or 0) + (adjusted[0]["sum"] or 0))
        count = captured[0]["count"] + adjusted[0]["count"]
    given = (
        await Entry.select(*ENTRY_COLUMNS, Entry.wallet)
        .where(
            Entry.wallet.is_in(list(names))
            & (Entry.created_at > since)
            & (Entry.kind == EntryKind.adjust.value)
            & (Entry.amount > 0)
        )
        .order_by(Entry.id)
        .limit(DIGEST_LINES)
    )
    return Debits(
        count,
        credits,
        [{**row, "expert": names[row["wallet"]]} for row in first],
        [{**row, "expert": names[row["wallet"]]} for row in given],
    )


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
    if not debits.count:
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


def _line(entry: dict[str, Any], credits: int, sign: str) -> str:
    """When, with whom, why, how many: one line of the digest."""
    said = ngettext("%(num)d credit", "%(num)d credits", credits) % {"num": credits}
    when = i18n.format_datetime_in(entry["created_at"], i18n.current_timezone())
    why = what(entry["kind"], entry["reference"], entry["memo"])
    return f"{when} · {entry['expert']} · {why} · {sign}{said}"


def _compose(debits: Debits) -> Email:
    lines = [
        _line(debit, -change(debit["kind"], debit["amount"], debit["held_change"]), "−")
        for debit in debits.first
    ]
    if debits.count > len(debits.first):
        more = debits.count - len(debits.first)
        lines.append(
            ngettext("… and %(num)d more debit.", "… and %(num)d more debits.", more)
            % {"num": more}
        )
    if debits.given:
        lines.append(_("Given back or added in the same time:"))
    lines += [_line(entry, entry["amount"], "+") for entry in debits.given]
    total = debits.credits
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
