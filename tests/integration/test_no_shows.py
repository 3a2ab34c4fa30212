"""No-shows told after a grace period, at a cost stated beforehand; the client told, who may
contest within 48 hours; the expert decides, the client is told; and the client may say
the expert did not call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from httpx import AsyncClient

from portal.booking.services import booking_contest, booking_no_show
from portal.booking.tables import Booking
from portal.credits import ledger
from portal.errors import Conflict
from portal.notify.tables import Notification
from tests.support import (
    book_call,
    emails_written,
    give_credits,
    login,
    make_published_expert,
    make_user,
    next_monday_at,
    post_form,
)


async def _started(minutes_ago: int) -> Booking:
    """A 30-minute call (2 credits) that started `minutes_ago`."""
    expert = await make_published_expert()
    customer = await make_user("c@example.org")
    await give_credits(customer, expert, 10)
    booked = await book_call(expert, customer, next_monday_at(10))
    start = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    await Booking.update(
        {
            Booking.starts_at: start,
            Booking.ends_at: start + timedelta(minutes=30),
            Booking.blocked_until: start + timedelta(minutes=30),
        }
    ).where(Booking.id == booked.id)
    moved = await Booking.objects().get(Booking.id == booked.id)
    assert moved is not None
    return moved


async def _balance(booking: Booking) -> tuple[int, int]:
    """The client's (available, held) credits with the booking's expert."""
    wallet = await ledger.wallet_for(client_id=booking.client, expert_id=booking.expert)
    got = await ledger.balance(wallet_id=wallet.id)
    return got.available, got.held


async def _emails(kind: str) -> list[Notification]:
    await emails_written()
    return await Notification.objects().where(Notification.kind == kind).order_by(Notification.id)


async def test_a_no_show_waits_for_the_grace_period_and_states_its_cost(
    client: AsyncClient,
) -> None:
    booking = await _started(5)
    await login(client, "expert@example.org")
    day = f"/expert/schedule?view=day&day={booking.starts_at.date().isoformat()}"
    early = (await client.get(day)).text
    assert "absence\u202f: à partir de 10 minutes après le début" in early.lower()
    with pytest.raises(Conflict):
        await booking_no_show(booking=booking, client_absent=True)
    await Booking.update({Booking.starts_at: Booking.starts_at - timedelta(minutes=10)}).where(
        Booking.id == booking.id
    )
    page = (await client.get(day)).text
    assert "Le client n’est pas venu (2 crédits débités)" in page
    assert "il peut le contester sous 48 heures" in page  # the confirmation says it all
    told = await post_form(
        client, f"/expert/bookings/{booking.id}/no-show", {"absent": "client"}, from_page=day
    )
    assert told.status_code == 303
    [email] = await _emails("no_show")
    assert email.to_address == "c@example.org"
    assert "2 crédits sont débités" in email.text and "48 heures" in email.text
    assert await _balance(booking) == (8, 0)


async def test_a_contest_accepted_gives_the_credits_back_and_both_are_told(
    client: AsyncClient, other_client: AsyncClient
) -> None:
    booking = await _started(30)
    await booking_no_show(booking=booking, client_absent=True)
    await login(client, "c@example.org")
    page = f"/me/bookings/{booking.id}"
    shown = (await client.get(page)).text
    assert "Contester l’absence" in shown
    assert "jusqu’au" in shown  # the 48 hours, as a date
    empty = await post_form(client, f"{page}/contest", {"contest": " "}, from_page=page)
    assert empty.status_code == 422
    sent = await post_form(
        client, f"{page}/contest", {"contest": "J’ai appelé trois fois."}, from_page=page
    )
    assert sent.status_code == 303
    [to_expert] = await _emails("contest")
    assert to_expert.to_address == "expert@example.org"
    assert "J’ai appelé trois fois." in to_expert.text
    assert "Camille Client (c@example.org) dit avoir été là" in to_expert.text
    await login(other_client, "expert@example.org")
    day = f"/expert/schedule?view=day&day={booking.starts_at.date().isoformat()}"
    assert "J’ai appelé trois fois." in (await other_client.get(day)).text
    decided = await post_form(
        other_client, f"/expert/bookings/{booking.id}/contest", {"accept": "yes"}, from_page=day
    )
    assert decided.status_code == 303
    assert await _balance(booking) == (10, 0)  # the 2 debited credits are back
    [to_client] = await _emails("contest_decided")
    assert "accepté" in to_client.text
    assert "a été acceptée" in (await client.get(page)).text
    history = (await client.get("/me/wallets/alice-expert")).text
    assert f"Absence du rendez-vous n° {booking.id} contestée" in history
    # The evening digest, which told the debit, now says it was given back.
    [digest] = await _emails("debits")
    assert digest.text.index("−2 crédits") < digest.text.index("Rendus ou ajoutés")
    assert digest.text.rstrip().count("+2 crédits") == 1
    again = await post_form(
        other_client,
        f"/expert/bookings/{booking.id}/contest",
        {"accept": "no", "reply": "Non."},
        from_page=day,
    )
    assert again.status_code == 409  # answered once


async def test_a_no_show_kept_says_why(client: AsyncClient, other_client: AsyncClient) -> None:
    booking = await _started(30)
    await booking_no_show(booking=booking, client_absent=True)
    await booking_contest(booking=booking, text="J’étais là.")
    await login(other_client, "expert@example.org")
    day = f"/expert/schedule?view=day&day={booking.starts_at.date().isoformat()}"
    url = f"/expert/bookings/{booking.id}/contest"
    unsaid = await post_form(other_client, url, {"accept": "no", "reply": " "}, from_page=day)
    assert unsaid.status_code == 303  # back to the schedule, which says what is missing
    assert "Dites pourquoi l’absence est maintenue" in (await other_client.get(day)).text
    assert await _balance(booking) == (8, 0)
    reason = "Je vous ai appelé à 10 h 00 et 10 h 05, sans réponse."
    kept = await post_form(other_client, url, {"accept": "no", "reply": reason}, from_page=day)
    assert kept.status_code == 303
    assert await _balance(booking) == (8, 0)  # the credits stay debited
    [to_client] = await _emails("contest_decided")
    assert reason in to_client.text
    # The contest, read after it was answered, still went to the expert as a contest.
    [to_expert] = await _emails("contest")
    assert to_expert.to_address == "expert@example.org" and "J’étais là." in to_expert.text
    await login(client, "c@example.org")
    assert reason in (await client.get(f"/me/bookings/{booking.id}")).text


async def test_a_contest_kept_or_late_changes_nothing() -> None:
    booking = await _started(30)
    ended = await booking_no_show(booking=booking, client_absent=True)
    later = (ended.settled_at or datetime.now(UTC)) + timedelta(hours=49)
    with pytest.raises(Conflict) as late:
        await booking_contest(booking=ended, text="J’étais là.", now=later)
    assert late.value.code == "contest_closed"
    assert await _balance(booking) == (8, 0)


async def test_the_client_says_the_expert_did_not_call(client: AsyncClient) -> None:
    booking = await _started(15)
    await login(client, "c@example.org")
    page = f"/me/bookings/{booking.id}"
    assert "L’expert n’a pas appelé" in (await client.get(page)).text
    told = await post_form(client, f"{page}/expert-absent", {}, from_page=page)
    assert told.status_code == 303
    stored = await Booking.objects().get(Booking.id == booking.id)
    assert stored is not None
    assert (stored.status, stored.no_show_reported_by) == ("no_show_expert", "client")
    assert await _balance(booking) == (10, 0)
    [email] = await _emails("expert_no_show_reported")
    assert email.to_address == "expert@example.org"
