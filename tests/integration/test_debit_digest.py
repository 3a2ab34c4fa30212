"""The evening digest of credits debited: one email for the day's debits, written again as
each debit is read, sent in the evening in the client's zone, off with the credits notices."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from portal.accounts.tables import User
from portal.booking.services import bookings_confirm_due
from portal.credits.services import wallet_adjust
from portal.notify import debits
from portal.notify.debits import DIGEST_AT, LATE_DELAY
from portal.notify.tables import Notification
from tests.support import (
    book_call,
    emails_written,
    give_credits,
    make_published_expert,
    make_user,
    next_monday_at,
)


async def _debited(notices: bool = True) -> tuple[User, list[Notification]]:
    expert = await make_published_expert()
    client = await make_user("c@example.org")
    await User.update({User.notify_credits: notices}).where(User.id == client.id)
    await give_credits(client, expert, 10)
    first = await book_call(expert, client, next_monday_at(9))
    await book_call(expert, client, next_monday_at(11), key="k2")
    assert await bookings_confirm_due(now=first.ends_at + timedelta(days=1)) == 2
    await emails_written()
    await wallet_adjust(
        client_id=client.id,
        expert_id=expert.id,
        credits=-1,
        reason="Document envoyé",
        validity_months=1,
        key="doc",
    )
    await emails_written()
    digests = await Notification.objects().where(Notification.kind == "debits")
    return client, digests


async def test_the_days_debits_are_told_once_in_the_evening() -> None:
    _client, digests = await _debited()
    [digest] = digests  # one email, written again as debits came
    assert digest.subject == "5 crédits débités aujourd’hui"
    lines = [line for line in digest.text.splitlines() if "Alice Expert" in line]
    assert len(lines) == 3
    assert "Crédits débités — Rendez-vous n° 1" in lines[0] and lines[0].endswith("−2 crédits")
    assert "Document envoyé" in lines[2] and lines[2].endswith("−1 crédit")
    due = digest.next_attempt_at.astimezone(ZoneInfo("Europe/Paris"))
    created = digest.created_at.astimezone(ZoneInfo("Europe/Paris"))
    evening = created.replace(hour=DIGEST_AT.hour, minute=0, second=0, microsecond=0)
    if created < evening:
        assert due == evening
    else:
        assert timedelta(0) < digest.next_attempt_at - digest.created_at <= LATE_DELAY * 2


async def test_no_digest_for_who_turned_credits_notices_off() -> None:
    _client, digests = await _debited(notices=False)
    assert digests == []


async def test_a_long_digest_lists_the_first_debits_and_counts_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(debits, "DIGEST_LINES", 2)
    _client, [digest] = await _debited()
    assert digest.subject == "5 crédits débités aujourd’hui"  # every debit counted
    lines = [line for line in digest.text.splitlines() if "Alice Expert" in line]
    assert len(lines) == 2 and "Rendez-vous n° 1" in lines[0]
    assert "… et 1 autre débit." in digest.text
