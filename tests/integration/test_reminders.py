"""Reminders and notices: each once, only to those who want them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from httpx import AsyncClient

from portal.accounts.tables import User
from portal.credits import ledger
from portal.notify.reminders import reminders_due
from portal.notify.tables import Notification
from portal.questions.services import ask
from portal.questions.tables import Question
from tests.support import (
    give_credits,
    login,
    make_booking,
    make_published_expert,
    make_user,
    post_form,
)


async def _kinds() -> list[tuple[str, str]]:
    return sorted((n.kind, n.to_address) for n in await Notification.objects())


async def test_bookings_are_recalled_a_day_and_an_hour_ahead_once() -> None:
    expert = await make_published_expert()
    client = await make_user("c@example.org")
    start = datetime.now(UTC) + timedelta(minutes=50)
    await make_booking(
        expert,
        client,
        start,
        channel="video",
        meeting_url="https://meet.jit.si/x",
        created_at=datetime.now(UTC) - timedelta(days=3),
    )
    await reminders_due()
    await reminders_due()  # again: nothing more
    assert await _kinds() == [
        ("booking_reminder", "c@example.org"),
        ("booking_reminder", "c@example.org"),
        ("booking_reminder", "expert@example.org"),
        ("booking_reminder", "expert@example.org"),
    ]
    subjects = {n.subject for n in await Notification.objects()}
    assert "Dans 1 heure\u202f: Visio · 30\u00a0min" in subjects


async def test_a_booking_made_within_the_hour_gets_no_reminder() -> None:
    expert = await make_published_expert()
    client = await make_user("c@example.org")
    start = datetime.now(UTC) + timedelta(minutes=50)
    await make_booking(expert, client, start)  # booked just now
    await reminders_due()
    assert await Notification.count() == 0


async def test_deadlines_expiring_credits_and_low_balances(client: AsyncClient) -> None:
    expert = await make_published_expert()
    customer = await make_user("c@example.org")
    await give_credits(customer, expert, 2)
    question = await ask(client=customer, expert=expert, body="Vite !", urgent=True, key="k")
    await Notification.delete(force=True)  # the "new question" email
    await Question.update({Question.due_at: datetime.now(UTC) + timedelta(minutes=30)}).where(
        Question.id == question.id
    )
    other = await make_user("d@example.org")
    wallet = await ledger.wallet_for(client_id=other.id, expert_id=expert.id)
    await ledger.grant(
        wallet_id=wallet.id,
        credits=3,
        expires_at=datetime.now(UTC) + timedelta(days=10),
        reference="adjust:soon",
        key="soon",
    )
    await reminders_due()
    await reminders_due()
    assert await _kinds() == [
        ("balance_low", "c@example.org"),  # all held: nothing left for another exchange
        ("credits_expiring", "d@example.org"),
        ("deadline_soon", "expert@example.org"),
    ]
    # Turned off on /account: nothing more of these kinds for that client.
    await login(client, "c@example.org")
    saved = await post_form(
        client, "/account/emails", {"remind_bookings": "on"}, from_page="/account"
    )
    assert saved.status_code == 303
    user = await User.objects().get(User.email == "c@example.org")
    assert (user.remind_bookings, user.notify_credits) == (True, False)
    await Notification.delete(force=True)
    await reminders_due()
    assert await _kinds() == [
        ("credits_expiring", "d@example.org"),
        ("deadline_soon", "expert@example.org"),
    ]
