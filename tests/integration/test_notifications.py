"""Emails: written with what they tell (once per event), in the recipient's language, sent
through a real SMTP server on loopback and parsed back (text, HTML, the calendar part);
an SMTP outage retried until the email goes out, once; two senders at once send once."""

from __future__ import annotations

import asyncio
import copy
import email
import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import Message
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
from aiosmtpd.controller import Controller
from arq.connections import RedisSettings
from arq.worker import Worker
from httpx import AsyncClient

from portal.accounts.tables import Expert, User
from portal.app import create_app
from portal.booking.services import booking_cancel
from portal.credits.tables import Purchase
from portal.errors import ValidationFailed
from portal.notify.messages import purchase_receipt
from portal.notify.services import Outbox, message_of, notifications_send_due
from portal.notify.tables import Notification
from portal.settings import get_settings
from tests.integration.conftest import running
from tests.support import (
    book_call,
    emails_written,
    give_credits,
    login,
    make_published_expert,
    make_user,
    next_monday_at,
)
from workers.settings import WorkerSettings, send_notifications

PARIS = ZoneInfo("Europe/Paris")


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[_Inbox, int]]:
    inbox, port = _Inbox(), _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


async def _booked(expert: Expert | None = None) -> tuple[Any, User]:
    expert = expert or await make_published_expert()
    await User.update({User.locale: "en"}).where(User.email == "expert@example.org")
    client = await make_user("c@example.org")  # French
    await give_credits(client, expert, 10)
    booking = await book_call(expert, client, next_monday_at(9))
    await emails_written()
    return booking, client


def _parts(message: Message) -> dict[str, Message]:
    return {part.get_content_type(): part for part in message.walk()}


async def test_a_booking_is_told_to_both_in_their_language(smtp: tuple[_Inbox, int]) -> None:
    inbox, port = smtp
    booking, _client = await _booked()
    kinds = sorted(n.kind for n in await Notification.objects())
    assert kinds == ["booking_booked", "expert_booking_booked"]
    outbox = Outbox(
        smtp_url=f"smtp://127.0.0.1:{port}",
        folder=Path("/nonexistent"),
        sender="noreply@portal.test",
    )
    assert await notifications_send_due(outbox) == 2
    assert await notifications_send_due(outbox) == 0  # sent: never again
    by_to = {m["To"]: m for m in inbox.messages}
    client_mail, expert_mail = by_to["c@example.org"], by_to["expert@example.org"]
    assert client_mail["Subject"].startswith("Rendez-vous confirmé")
    assert "09:00" in client_mail["Subject"]  # when, in the subject (Paris time)
    assert expert_mail["Subject"].startswith("New booking")
    client_text = _parts(client_mail)["text/plain"].get_payload(decode=True).decode()
    # How it happens, and where to move or cancel it.
    assert "L’expert vous appelle au +33 6 12 34 56 78." in client_text
    assert f"/me/bookings/{booking.id}" in client_text.split("déplacer ou l’annuler")[1]
    expert_text = _parts(expert_mail)["text/plain"].get_payload(decode=True).decode()
    assert "You call the client at +33 6 12 34 56 78." in expert_text
    parts = _parts(client_mail)
    assert {"text/plain", "text/html", "text/calendar"} <= set(parts)
    assert "Bonjour Camille Client" in parts["text/plain"].get_payload(decode=True).decode()
    calendar_part = parts["text/calendar"]
    assert calendar_part.get_param("method") == "REQUEST"
    event = icalendar.Calendar.from_ical(calendar_part.get_payload(decode=True)).walk("VEVENT")[0]
    assert event["UID"].startswith(f"booking-{booking.uid}@")

    await booking_cancel(booking=booking, by_expert=False)

    await emails_written()
    assert await notifications_send_due(outbox) == 2
    cancelled = [m for m in inbox.messages if m["To"] == "c@example.org"][-1]
    part = _parts(cancelled)["text/calendar"]
    assert part.get_param("method") == "CANCEL"
    assert b"METHOD:CANCEL" in part.get_payload(decode=True)


async def test_the_invite_parts_say_their_charset_and_name() -> None:
    """Outlook garbles a calendar part without a charset; some clients name an attachment
    only from its content type."""
    booking, _client = await _booked()
    await Expert.update({Expert.display_name: "Élodie Déjà-Vu"}).where(Expert.id == booking.expert)
    await booking_cancel(booking=booking, by_expert=True, reason="Empêchée")
    await emails_written()
    to_client = (
        await Notification.objects()
        .where(Notification.to_address == "c@example.org")
        .order_by(Notification.id)
    )
    assert {n.ics_method for n in to_client} == {"REQUEST", "CANCEL"}
    for notification in to_client:
        raw = bytes(message_of(notification, "noreply@portal.test"))
        message = email.message_from_bytes(raw, policy=policy.default)
        calendar = _parts(message)["text/calendar"]
        attachment = next(p for p in message.walk() if p.get_filename() == "invite.ics")
        for part in (calendar, attachment):
            assert 'charset="UTF-8"' in part["Content-Type"]
            assert part.get_content_charset() == "utf-8"
        assert calendar.get_param("method") == notification.ics_method
        assert attachment.get_param("name") == "invite.ics"
        assert attachment.get_content_disposition() == "attachment"
    text = attachment.get_payload(decode=True).decode("utf-8")
    assert "Élodie Déjà-Vu" in text and "METHOD:CANCEL" in text


async def test_an_smtp_outage_is_retried_until_the_email_goes_once(
    smtp: tuple[_Inbox, int],
) -> None:
    inbox, port = smtp
    await _booked()
    down = Outbox(smtp_url=f"smtp://127.0.0.1:{_free_port()}", folder=Path("/x"), sender="n@p.test")
    assert await notifications_send_due(down) == 0
    waiting = await Notification.objects()
    assert {(n.status, n.attempts) for n in waiting} == {("pending", 1)}
    assert all("ConnectionRefusedError" in n.last_error for n in waiting)
    up = Outbox(smtp_url=f"smtp://127.0.0.1:{port}", folder=Path("/x"), sender="n@p.test")
    assert await notifications_send_due(up) == 0  # not before the retry time
    later = datetime.now(UTC) + timedelta(minutes=2)
    assert await notifications_send_due(up, now=later) == 2
    assert await notifications_send_due(up, now=later + timedelta(hours=1)) == 0
    assert len(inbox.messages) == 2


async def test_an_email_that_cannot_be_built_fails_alone_and_the_others_go(
    smtp: tuple[_Inbox, int], client: AsyncClient
) -> None:
    """A row no email can carry (an address that became two, written before addresses were
    checked, say) is marked failed with its error, shown to its expert, and never stops the
    round: the others go out."""
    inbox, port = smtp
    expert = await make_published_expert()
    await Notification(
        user=expert.user,
        kind="purchase_receipt",
        key="old:receipt",
        to_address="expert@example.org,\r\nsomeone@example.org",
        subject="Receipt: X",
        text="t",
        html="<p>h</p>",
    ).save()
    await _booked(expert)  # two emails to send after it
    settings = replace(get_settings(), smtp_url=f"smtp://127.0.0.1:{port}")
    assert await send_notifications({"settings": settings}) == 2
    assert sorted(m["To"] for m in inbox.messages) == ["c@example.org", "expert@example.org"]
    assert not any("someone@example.org" in str(m) for m in inbox.messages)
    bad = await Notification.objects().get(Notification.key == "old:receipt")
    assert (bad.status, bad.attempts) == ("failed", 1)
    assert bad.last_error.startswith("ValueError: Not one address")
    assert await send_notifications({"settings": settings}) == 0  # not again at once
    await login(client, "expert@example.org")
    page = (await client.get("/expert")).text
    assert "1 email to you could not be sent" in page


@pytest.mark.parametrize(
    ("name", "subject"),
    [
        ("Pack\r\nBcc: someone@example.org", "Pack Bcc: someone@example.org"),
        # An encoded word that decodes to a line break (CVE-2024-6923): plain text here.
        ("P=?utf-8?q?=0D=0ABcc:_spy@evil.test?=", "P=\u200b?utf-8?q?=0D=0ABcc:_spy@evil.test?="),
    ],
)
async def test_a_name_that_would_add_a_header_still_makes_one_subject_line(
    smtp: tuple[_Inbox, int], name: str, subject: str
) -> None:
    """Names are checked when written; one from before (a pack sold under it), or one that
    hides a line break in an encoded word, still gives a subject of one line, and no header
    of its own."""
    inbox, port = smtp
    expert = await make_published_expert()
    client = await make_user("c@example.org")
    purchase = Purchase(
        client=client.id,
        expert=expert.id,
        pack_name=name,
        credits=10,
        price_minor=100_00,
        currency="EUR",
        charter_version=1,
        validity_months=12,
    )
    await purchase.save()
    await purchase_receipt(purchase)
    outbox = Outbox(smtp_url=f"smtp://127.0.0.1:{port}", folder=Path("/x"), sender="n@p.test")
    assert await notifications_send_due(outbox) == 1
    (message,) = inbox.messages
    assert message["Subject"] == f"Reçu\u202f: {subject} chez Alice Expert"
    assert message["Bcc"] is None
    assert sorted(message.keys()) == sorted(
        ["Subject", "From", "To", "Date", "Message-ID", "MIME-Version", "Content-Type"]
    )


async def test_two_senders_at_once_send_each_email_once(smtp: tuple[_Inbox, int]) -> None:
    inbox, port = smtp
    await _booked()
    outbox = Outbox(smtp_url=f"smtp://127.0.0.1:{port}", folder=Path("/x"), sender="n@p.test")
    sent = await asyncio.gather(*(notifications_send_due(outbox) for _ in range(4)))
    assert sum(sent) == 2 and len(inbox.messages) == 2


async def test_without_smtp_emails_are_files(tmp_path: Path) -> None:
    await _booked()
    outbox = Outbox(smtp_url=None, folder=tmp_path / "outbox", sender="n@p.test")
    assert await notifications_send_due(outbox) == 2
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 2
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert parsed["Subject"] and "text/calendar" in _parts(parsed)


async def test_the_worker_sends_and_the_expert_sees_its_health(
    tmp_path: Path, client: AsyncClient
) -> None:
    await _booked()
    settings = replace(get_settings(), smtp_url=None, var_dir=tmp_path)
    worker = Worker(
        functions=WorkerSettings.functions,
        cron_jobs=copy.deepcopy(WorkerSettings.cron_jobs),
        on_startup=WorkerSettings.on_startup,
        on_shutdown=WorkerSettings.on_shutdown,
        poll_delay=WorkerSettings.poll_delay,
        redis_settings=RedisSettings.from_dsn(settings.redis_url or ""),
        ctx={"settings": settings},
        burst=True,
        handle_signals=False,
    )
    try:
        await worker.run_check()
    finally:
        await worker.close()
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2
    # An email to the expert that could not be sent shows on their dashboard.
    await Notification.update({Notification.status: "failed"}).where(
        Notification.to_address == "expert@example.org"
    )
    await login(client, "expert@example.org")
    page = (await client.get("/expert")).text
    assert "Working: last sign of life" in page  # the worker ran moments ago (in English)
    assert "1 email to you could not be sent" in page


async def test_the_demo_shows_its_outbox(tmp_path: Path) -> None:
    await _booked()
    demo = create_app(replace(get_settings(), demo=True))
    async with running(demo) as http:
        listing = await http.get("/outbox")
        assert listing.status_code == 200 and "Rendez-vous confirmé" in listing.text
        assert "E-mails envoyés (démo)" in listing.text  # the footer link
        # What became of each, in the reader's words, and when a waiting one leaves.
        assert "en attente d’envoi · part le" in listing.text
        assert "pending" not in listing.text
        first = await Notification.objects().first()
        assert first is not None
        shown = await http.get(f"/outbox/{first.id}")
        assert "BEGIN:VCALENDAR" in shown.text
    async with running(create_app(get_settings())) as http:  # not a demo: no such page
        assert (await http.get("/outbox")).status_code == 404


async def test_an_expert_cancelling_says_why_and_that_the_credits_are_released() -> None:
    booking, _client = await _booked()
    with pytest.raises(ValidationFailed) as unsaid:
        await booking_cancel(booking=booking, by_expert=True, reason="  ")
    assert unsaid.value.errors == {"reason": "Say why: the client reads it."}
    await booking_cancel(booking=booking, by_expert=True, reason="Je suis souffrante.")
    await emails_written()
    [told] = await Notification.objects().where(Notification.kind == "booking_cancelled")
    assert told.to_address == "c@example.org"
    assert told.subject.startswith("Alice Expert a annulé votre rendez-vous")
    assert "Son motif\u202f: Je suis souffrante." in told.text
    assert "sont libérés" in told.text
    assert told.ics_method == "CANCEL"
    [own] = await Notification.objects().where(Notification.kind == "expert_booking_cancelled")
    assert "You cancelled it: Je suis souffrante." in own.text  # the expert reads English


async def test_the_answer_email_says_in_a_sentence_whether_it_is_billed() -> None:
    from portal.questions.services import answer, ask

    expert = await make_published_expert()
    client = await make_user("c@example.org")
    await give_credits(client, expert, 10)
    for n, billable in enumerate((True, False)):
        asked = await ask(client=client, expert=expert, body=f"Q{n}?", urgent=False, key=f"k{n}")
        await answer(expert=expert, question_id=asked.id, body="R.", billable=billable)
    await emails_written()
    texts = [
        n.text
        for n in await Notification.objects()
        .where(Notification.kind == "question_answered")
        .order_by(Notification.id)
    ]
    assert "Cette réponse relève de l’expertise\u202f: elle est facturée." in texts[0]
    assert "Cette réponse relève de la coordination\u202f: elle est gratuite." in texts[1]
