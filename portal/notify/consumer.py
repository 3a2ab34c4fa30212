"""The emails that follow what happened: the notify consumer of the event log.

Domain services record events (portal.events) and import nothing from here; the worker
reads the log and this module renders each event's emails before the consumer's
transaction and stores them in it (so once per event), in each recipient's language and
time zone. A booking's emails are
written from the times and sequence its event recorded, so an email read late still tells
that change, not a later one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from portal.accounts.codes import code_of
from portal.accounts.email_change import change_link
from portal.accounts.reset import reset_link
from portal.accounts.signup import signup_link
from portal.accounts.tables import User
from portal.booking.tables import Booking
from portal.credits.tables import Purchase
from portal.events.consume import Consumer, Recorded
from portal.notify import messages
from portal.notify.debits import debit_noted
from portal.notify.services import drafting, drafts_write
from portal.notify.tables import Notification
from portal.questions.tables import Question

BOOKING_CHANGES = {
    "booking.created": "booked",
    "booking.moved": "moved",
    "booking.cancelled": "cancelled",
}


async def _booking(event: Recorded) -> None:
    booking = await Booking.objects().get(Booking.id == event.data["booking"])
    if booking is None:
        return
    booking.starts_at = datetime.fromisoformat(event.data["starts_at"])
    booking.ends_at = datetime.fromisoformat(event.data["ends_at"])
    booking.sequence = event.data["sequence"]
    booking.status = event.data["status"]
    await messages.booking_changed(booking, BOOKING_CHANGES[event.kind])


async def _question(event: Recorded) -> None:
    question = await Question.objects().get(Question.id == event.data["question"])
    if question is None:
        return
    if event.kind == "question.asked":
        await messages.question_asked(question)
    else:
        await messages.question_answered(question)


async def _purchase(event: Recorded) -> None:
    purchase = await Purchase.objects().get(Purchase.id == event.data["purchase"])
    if purchase is not None:
        await messages.purchase_receipt(purchase)


async def _account(event: Recorded) -> None:
    user = await User.objects().get(User.id == event.data["user"])
    if user is None:
        return
    if event.kind == "account.signup_requested":
        link = signup_link(user, datetime.fromisoformat(event.data["at"]))
        await messages.signup_confirmation(user, link, event.key)
    elif event.kind == "account.signup_attempted":
        await messages.signup_attempted(user, event.key.rsplit(":", 1)[1])
    elif event.kind == "account.email_change_requested":
        link = change_link(event.data["change"], event.data["seed"])
        await messages.email_change_link(user, event.data["new_email"], link, event.key)
    elif event.kind == "account.email_changed":
        former, new_email = event.data["former"], event.data["new_email"]
        await messages.email_changed(user, former, new_email, event.key)
    elif event.kind == "account.password_reset":
        link = reset_link(event.data["reset"], event.data["seed"])
        await messages.password_reset(user, link, event.key)
    else:
        code = code_of(user.email, event.data["nonce"])
        await messages.login_code(user, code, event.data["minutes"], event.data["nonce"])


async def _booking_after(event: Recorded) -> None:
    booking = await Booking.objects().get(Booking.id == event.data["booking"])
    if booking is None:
        return
    if event.kind == "booking.no_show":
        await messages.no_show_told(booking, event.key)
    else:
        await messages.contest_told(
            booking, event.key, decided=event.kind == "booking.contest_decided"
        )


HANDLERS = {
    **dict.fromkeys(BOOKING_CHANGES, _booking),
    "booking.no_show": _booking_after,
    "booking.contested": _booking_after,
    "booking.contest_decided": _booking_after,
    "question.asked": _question,
    "question.answered": _question,
    "purchase.paid": _purchase,
    "account.signup_requested": _account,
    "account.signup_attempted": _account,
    "account.login_code": _account,
    "account.password_reset": _account,
    "account.email_change_requested": _account,
    "account.email_changed": _account,
}


# What may debit a client's credits: their evening digest is written again.
DEBITING = frozenset(
    {
        "booking.confirmed",
        "booking.cancelled",
        "booking.no_show",
        "question.settled",
        "wallet.adjusted",
        "booking.contest_decided",  # not a debit: a no-show's credits maybe given back
    }
)


@dataclass(frozen=True, slots=True)
class Ready:
    """An event made ready before the round's transaction: its emails rendered, and whether
    its client's digest is written again with it (once a round for each client: the last
    of their debiting events; the ledger already holds the debits of every event read)."""

    drafts: list[Notification] | None
    digest: bool


async def _prepare(events: list[Recorded]) -> dict[int, Ready]:
    """The round's emails rendered, not stored (before the round's transaction)."""
    last_debit = {event.data.get("client"): event.id for event in events if event.kind in DEBITING}
    ready = {}
    for event in events:
        drafts = None
        if event.kind in HANDLERS:
            with drafting() as drafts:
                await HANDLERS[event.kind](event)
        digest = event.kind in DEBITING and last_debit[event.data.get("client")] == event.id
        ready[event.id] = Ready(drafts, digest)
    return ready


async def _handle(event: Recorded, ready: Ready | None) -> None:
    if event.kind in HANDLERS:
        if ready is None or ready.drafts is None:  # not prepared: rendered and stored here
            await HANDLERS[event.kind](event)
        else:
            await drafts_write(ready.drafts)
    if event.kind in DEBITING and (ready is None or ready.digest):
        # Written again from the ledger: read here, where the debits stand.
        await debit_noted(event.data["client"], event.recorded_at)


NOTIFY = Consumer(
    name="notify", kinds=frozenset(HANDLERS) | DEBITING, handle=_handle, prepare=_prepare
)
