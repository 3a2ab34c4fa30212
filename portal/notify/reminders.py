"""Reminders and notices nobody asks for at the moment they are due: a booking 24 hours and
1 hour ahead (client and expert), an expert's reply deadline within the hour, credits
expiring within 30 days, a balance that no longer pays for the expert's cheapest exchange.

The worker looks every minute; each email has a key naming what it reminds of, so looking
again (or two workers looking at once) tells nothing twice. People turn kinds off on
/account.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from portal.accounts.tables import Expert, User
from portal.booking.tables import Booking, BookingStatus
from portal.charter.services import version_current
from portal.credits.tables import Entry, Lot, Wallet
from portal.notify import messages
from portal.questions.tables import Question, QuestionStatus

LEADS = (timedelta(hours=24), timedelta(hours=1))
DEADLINE_SOON = timedelta(hours=1)
EXPIRING_WITHIN = timedelta(days=30)


async def _users(ids: set[int]) -> dict[int, User]:
    return {u.id: u for u in await User.objects().where(User.id.is_in(list(ids) or [0]))}


async def _booking_reminders(now: datetime) -> None:
    for lead in LEADS:
        soon = await Booking.objects().where(
            (Booking.status == BookingStatus.booked.value)
            & (Booking.starts_at > now)
            & (Booking.starts_at <= now + lead)
        )
        # Booked within the lead: its confirmation has just said it all.
        due = [b for b in soon if b.created_at < b.starts_at - lead]
        experts = {
            e.id: e
            for e in await Expert.objects().where(Expert.id.is_in([b.expert for b in due] or [0]))
        }
        users = await _users({b.client for b in due} | {e.user for e in experts.values()})
        for booking in due:
            for user in (users[booking.client], users[experts[booking.expert].user]):
                if user.remind_bookings:
                    await messages.booking_reminder(booking, user, lead)


async def _deadline_reminders(now: datetime) -> None:
    due = await Question.objects().where(
        (Question.status == QuestionStatus.open.value)
        & (Question.due_at > now)
        & (Question.due_at <= now + DEADLINE_SOON)
    )
    experts = {
        e.id: e
        for e in await Expert.objects().where(Expert.id.is_in([q.expert for q in due] or [0]))
    }
    users = await _users({e.user for e in experts.values()})
    for question in due:
        user = users[experts[question.expert].user]
        if user.remind_deadlines:
            await messages.deadline_soon(question, user)


async def _credit_notices(now: datetime) -> None:
    lots = await Lot.select(
        Lot.id, Lot.remaining, Lot.expires_at, Lot.wallet.client, Lot.wallet.expert
    ).where(
        (Lot.remaining > 0) & (Lot.expires_at > now) & (Lot.expires_at <= now + EXPIRING_WITHIN)
    )
    users = await _users({row["wallet.client"] for row in lots})
    for row in lots:
        user = users[row["wallet.client"]]
        if user.notify_credits:
            await messages.credits_expiring(
                row["id"], row["remaining"], row["expires_at"], row["wallet.expert"], user
            )
    # A balance that changed in the last day and no longer pays for the cheapest exchange.
    recent = (
        await Entry.select(Entry.wallet)
        .where(Entry.created_at > now - timedelta(days=1))
        .distinct()
    )
    wallets = await Wallet.objects().where(Wallet.id.is_in([r["wallet"] for r in recent] or [0]))
    users = await _users({w.client for w in wallets})
    cheapest: dict[int, tuple[Expert, int | None]] = {}  # one look per expert
    for wallet in wallets:
        user = users[wallet.client]
        if not user.notify_credits:
            continue
        if wallet.expert not in cheapest:
            expert = await Expert.objects().get(Expert.id == wallet.expert)
            if expert is None:
                continue
            current = await version_current(expert=expert)
            rules = current.rules if current else None
            prices = (
                [rules.answer_price, *rules.call_prices.values(), *rules.video_prices.values()]
                if rules
                else []
            )
            cheapest[wallet.expert] = (expert, min(prices) if prices else None)
        expert, price = cheapest[wallet.expert]
        if price is not None and wallet.available < price:
            last = (
                await Entry.select(Entry.id)
                .where(Entry.wallet == wallet.id)
                .order_by(Entry.id, ascending=False)
                .first()
            )
            await messages.balance_low(wallet, expert, user, last["id"] if last else 0)


async def reminders_due(*, now: datetime | None = None) -> None:
    """Write every reminder and notice due now (each once)."""
    now = now or datetime.now(UTC)
    await _booking_reminders(now)
    await _deadline_reminders(now)
    await _credit_notices(now)
