"""The booking pages end to end through the app: slot picker, confirmation, booking page
with its invite, cancelling and moving; the expert's availability, schedule and feed."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import icalendar
from httpx import AsyncClient

from portal.accounts.tables import User
from portal.booking.availability import availability_of
from portal.booking.services import SlotChoice, booking_create
from portal.booking.tables import Availability, Booking, ExternalCalendar
from portal.charter.rules import Rules
from tests.support import (
    PASSWORD,
    book_call,
    finish_signup,
    give_credits,
    login,
    make_booking,
    make_published_expert,
    make_user,
    next_monday_at,
    post_form,
)


def _next_monday() -> date:
    today = datetime.now(UTC).date()
    return today + timedelta(days=7 - today.weekday())


async def _setup(credits: int = 10) -> None:
    expert = await make_published_expert()
    client = await make_user("c@example.org")
    if credits:
        await give_credits(client, expert, credits)


def _slot_links(html: str) -> list[str]:
    return [link.replace("&amp;", "&") for link in re.findall(r'class="slot" href="([^"]+)"', html)]


async def test_book_from_the_picker_then_cancel(client: AsyncClient) -> None:
    await _setup()
    await login(client, "c@example.org")
    monday = _next_monday()
    picker = await client.get(
        "/e/alice-expert/book",
        params={
            "channel": "call",
            "duration": "30",
            "day": monday.isoformat(),
            "tz": "Europe/Paris",
        },
    )
    assert picker.status_code == 200
    links = _slot_links(picker.text)
    assert links and "lundi" in picker.text
    confirm_url = links[0]
    confirm = await client.get(confirm_url)
    assert confirm.status_code == 200
    page = confirm.text
    assert "Confirmer la réservation" in page and "2 crédits" in page
    assert "Version 1" in page and "Annulation gratuite" in page
    start = parse_qs(urlsplit(confirm_url).query)["start"][0]
    form = {
        "key": "form-key-1",
        "channel": "call",
        "duration": "30",
        "start": start,
        "tz": "Europe/Paris",
        "charter_version": "1",
        "phone": "06 12 34 56 78",
    }
    created = await post_form(client, "/e/alice-expert/book", form, from_page=confirm_url)
    assert created.status_code == 303, created.text
    again = await post_form(client, "/e/alice-expert/book", form, from_page=confirm_url)
    assert again.headers["location"] == created.headers["location"]  # one booking
    # A second tab (another form key) on the same slot: it is the client's own.
    other_tab = await post_form(
        client, "/e/alice-expert/book", {**form, "key": "form-key-2"}, from_page=confirm_url
    )
    assert other_tab.headers["location"] == created.headers["location"]
    told = (await client.get(other_tab.headers["location"])).text
    assert "Vous avez déjà réservé ce créneau" in told
    back = (await client.get(confirm_url)).text  # Back to the confirmation
    assert "Vous avez déjà réservé ce créneau." in back
    assert f'href="/me/bookings/{(await Booking.objects().first()).id}"' in back  # type: ignore[union-attr]
    booking_page = (await client.get(created.headers["location"])).text
    assert "Réservé" in booking_page and "06 12 34 56 78" in booking_page
    booking = await Booking.objects().first()
    assert booking is not None and await Booking.count() == 1

    invite = await client.get(f"/me/bookings/{booking.id}/invite.ics")
    assert invite.headers["content-type"].startswith("text/calendar")
    assert invite.headers["content-type"] == "text/calendar; method=REQUEST; charset=utf-8"
    event = icalendar.Calendar.from_ical(invite.content).walk("VEVENT")[0]
    assert (
        event["UID"].startswith(f"booking-{booking.uid}@") and "c@example.org" not in event["UID"]
    )

    await make_published_expert("bob@example.org", "bob-expert")
    assert (await client.get(f"/e/bob-expert/book?move={booking.id}")).status_code == 404
    moving = await client.get(f"/e/alice-expert/book?move={booking.id}")
    assert moving.status_code == 200 and "Déplacer votre rendez-vous" in moving.text
    # The page showed a cost of 1; it is 0 (free): nothing happens, the page says why.
    stale = await post_form(
        client,
        f"/me/bookings/{booking.id}/cancel",
        {"cost": "1"},
        from_page=f"/me/bookings/{booking.id}",
    )
    assert stale.status_code == 409 and "a changé" in stale.text
    me = (await client.get("/me")).text
    assert "Mes réservations" in me and f"/me/bookings/{booking.id}" in me
    cancelled = await post_form(
        client,
        f"/me/bookings/{booking.id}/cancel",
        {"cost": "0"},
        from_page=f"/me/bookings/{booking.id}",
    )
    assert cancelled.status_code == 303
    assert (await Booking.objects().first()).status == "cancelled"  # type: ignore[union-attr]
    assert (
        "Annulé : tous les crédits ont été libérés."
        in (await client.get(f"/me/bookings/{booking.id}")).text
    )
    cancel_invite = await client.get(f"/me/bookings/{booking.id}/invite.ics")
    assert b"METHOD:CANCEL" in cancel_invite.content and b"SEQUENCE:1" in cancel_invite.content


async def test_without_enough_credits_the_confirmation_offers_the_packs(
    client: AsyncClient,
) -> None:
    await _setup(credits=1)
    await login(client, "c@example.org")
    picker = await client.get(
        "/e/alice-expert/book",
        params={"channel": "call", "duration": "30", "day": _next_monday().isoformat()},
    )
    confirm = (await client.get(_slot_links(picker.text)[0])).text
    assert "Vous avez 1 crédit avec cet expert\u202f: il en faut 1 de plus." in confirm
    assert "/e/alice-expert/buy/" in confirm and "Confirmer la réservation" not in confirm


async def test_someone_elses_booking_is_not_found(client: AsyncClient) -> None:
    await _setup()
    await login(client, "c@example.org")
    picker = await client.get(
        "/e/alice-expert/book",
        params={"channel": "call", "duration": "30", "day": _next_monday().isoformat()},
    )
    url = _slot_links(picker.text)[0]
    start = parse_qs(urlsplit(url).query)["start"][0]
    await post_form(
        client,
        "/e/alice-expert/book",
        {
            "key": "k",
            "channel": "call",
            "duration": "30",
            "start": start,
            "tz": "Europe/Paris",
            "charter_version": "1",
            "phone": "0612345678",
        },
        from_page=url,
    )
    booking = await Booking.objects().first()
    assert booking is not None
    await make_user("other@example.org")
    await login(client, "other@example.org")
    for path in (f"/me/bookings/{booking.id}", f"/me/bookings/{booking.id}/invite.ics"):
        assert (await client.get(path)).status_code == 404


async def test_the_expert_sets_availability_and_sees_the_schedule(client: AsyncClient) -> None:
    await _setup()
    await login(client, "expert@example.org")
    page = await client.get("/expert/availability")
    assert page.status_code == 200 and "Heures de la semaine" in page.text
    hours = {f"hours_{d}": "" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    bad = await post_form(
        client,
        "/expert/availability",
        {
            **hours,
            "hours_mon": "9h-8h",
            "timezone": "Europe/Paris",
            "call_mode": "client_calls",
            "phone": "",
            "meeting_url": "http://x",
        },
        from_page="/expert/availability",
    )
    assert bad.status_code == 422
    assert bad.text.count('class="field-error"') >= 3  # hours, phone and room at once
    superscripts = await post_form(  # digits of other scripts are not a phone number
        client,
        "/expert/availability",
        {**hours, "timezone": "Europe/Paris", "call_mode": "client_calls", "phone": "²" * 8},
        from_page="/expert/availability",
    )
    assert superscripts.status_code == 422 and 'class="field-error"' in superscripts.text
    saved = await post_form(
        client,
        "/expert/availability",
        {
            **hours,
            "hours_tue": "10:00-12:00",
            "timezone": "America/New_York",
            "call_mode": "client_calls",
            "phone": "+1 212 555 0100",
            "meeting_url": "",
        },
        from_page="/expert/availability",
    )
    assert saved.status_code == 303
    availability = await Availability.objects().first()
    assert availability is not None and availability.timezone == "America/New_York"
    closed = await post_form(
        client,
        "/expert/availability/dates",
        {"day": (_next_monday() + timedelta(days=1)).isoformat(), "hours": "", "note": "Holiday"},
        from_page="/expert/availability",
    )
    assert closed.status_code == 303
    preview = (await client.get("/expert/availability")).text
    assert "Holiday" in preview and "fermé" in preview
    added = await post_form(
        client,
        "/expert/availability/calendars",
        {"url": "webcal://calendar.example.org/private/basic.ics", "name": "Agenda"},
        from_page="/expert/availability",
    )
    assert added.status_code == 303
    calendar = await ExternalCalendar.objects().first()
    assert calendar is not None and calendar.url.startswith("https://")
    assert (await client.get("/expert/schedule?view=week")).status_code == 200
    assert (await client.get("/expert/schedule?view=day&day=not-a-date")).status_code == 200

    feed_path = f"/calendar/{availability.feed_token}.ics"
    client.cookies.clear()
    feed = await client.get(feed_path)
    assert feed.status_code == 200 and b"METHOD:PUBLISH" in feed.content
    assert (await client.get("/calendar/not-the-right-token-at-all.ics")).status_code == 404


async def test_a_time_that_is_not_a_free_slot_says_so(client: AsyncClient) -> None:
    await _setup()
    await login(client, "c@example.org")
    saturday = _next_monday() + timedelta(days=5)
    page = await client.get(
        "/e/alice-expert/book/confirm",
        params={"channel": "call", "duration": "30", "start": f"{saturday}T10:00:00+01:00"},
    )
    assert page.status_code == 200
    assert "n’est pas un créneau libre" in page.text and "Confirmer la réservation" not in page.text
    # The Back button asks htmx to restore the page: it gets the whole page, not a fragment.
    restored = await client.get(
        "/e/alice-expert/book",
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )
    assert "<html" in restored.text and 'id="slots"' in restored.text


async def test_signing_up_from_a_chosen_slot_comes_back_to_it(client: AsyncClient) -> None:
    await _setup()
    target = "/e/alice-expert/book?channel=call&duration=30"
    login_page = await client.get("/login", params={"next": target})
    assert "/signup?next=/e/alice-expert/book%3Fchannel%3Dcall" in login_page.text
    signed = await post_form(
        client,
        "/signup",
        {
            "name": "Léa",
            "email": "lea@example.org",
            "password": "a long password 2026",
            "next": target,
        },
        from_page="/signup",
    )
    assert signed.status_code == 200  # "check your inbox": the emailed link leads on
    confirmed = await finish_signup(client, "lea@example.org", "a long password 2026")
    assert confirmed.status_code == 303 and confirmed.headers["location"] == target


async def test_the_feed_speaks_its_experts_language_whoever_fetches_it(
    client: AsyncClient,
) -> None:
    """Google's servers fetch the feed with no cookie and their own Accept-Language: the
    calendar's name and the events are in the expert's language."""
    expert = await make_published_expert()
    client_user = await make_user("c@example.org", locale="en")
    monday = datetime.combine(_next_monday(), datetime.min.time(), UTC)
    await make_booking(expert, client_user, monday + timedelta(hours=9))
    availability = await availability_of(expert)
    feed_path = f"/calendar/{availability.feed_token}.ics"

    async def read(accept: str) -> tuple[str, list[str]]:
        fetched = await client.get(feed_path, headers={"Accept-Language": accept})
        calendar = icalendar.Calendar.from_ical(fetched.content)
        return str(calendar["X-WR-CALNAME"]), [str(e["SUMMARY"]) for e in calendar.walk("VEVENT")]

    french = ("Alice Expert — Réservations", ["Appel · 30\u00a0min — Camille Client"])
    assert await read("en-US,en;q=0.9") == french
    await User.update({User.locale: "en"}).where(User.id == expert.user)
    english = ("Alice Expert — Bookings", ["Call · 30\u00a0min — Camille Client"])
    assert await read("fr-FR,fr;q=0.9") == english


async def test_a_booking_is_shown_in_the_viewers_zone_and_names_it(client: AsyncClient) -> None:
    """Booked while the picker showed New York, the booking's page shows it in the zone the
    client's pages use now (Paris, as /me does), and never calls another zone theirs."""
    expert = await make_published_expert()
    customer = await make_user("c@example.org")
    await give_credits(customer, expert, 10)
    booked = await booking_create(
        client=customer,
        expert=expert,
        asked=SlotChoice(
            channel="call",
            duration=30,
            start=next_monday_at(10),
            charter_version=1,
            key="k",
            timezone="America/New_York",
            phone="+33 6 12 34 56 78",
        ),
    )
    await login(client, "c@example.org")
    page = (await client.get(f"/me/bookings/{booked.id}")).text
    assert "votre heure" not in page.lower() and "your time" not in page.lower()
    when = page[page.index("<dt>Quand</dt>") :][:300]
    assert "10:00" in when and "(Europe/Paris)" in when and "New_York" not in when
    assert "10:00" in (await client.get("/me")).text  # the same time as the dashboard's


async def test_the_expert_cancels_with_a_reason_the_client_reads(client: AsyncClient) -> None:
    expert = await make_published_expert()
    customer = await make_user("c@example.org")
    await give_credits(customer, expert, 10)
    booked = await book_call(expert, customer, next_monday_at(10))
    other = await book_call(expert, customer, next_monday_at(14), key="k2")
    await login(client, "expert@example.org")
    schedule = f"/expert/schedule?day={next_monday_at(10).date().isoformat()}"
    assert 'name="reason"' in (await client.get(schedule)).text
    # Without a reason: refused, said, nothing changes.
    path = f"/expert/bookings/{booked.id}/cancel"
    refused = await post_form(client, path, {"reason": " "}, from_page=schedule)
    assert refused.status_code == 303
    assert "Dites pourquoi" in (await client.get(refused.headers["location"])).text
    assert (await Booking.objects().get(Booking.id == booked.id)).status == "booked"
    done = await post_form(client, path, {"reason": "Je suis souffrante."}, from_page=schedule)
    assert done.status_code == 303
    cancelled = await Booking.objects().get(Booking.id == booked.id)
    assert (cancelled.status, cancelled.cancel_reason) == ("cancelled", "Je suis souffrante.")
    # The API asks for the reason too.
    token = await client.post(
        "/api/v1/tokens", json={"email": "expert@example.org", "password": PASSWORD}
    )
    headers = {"Authorization": f"Bearer {token.json()['token']}"}
    api = f"/api/v1/expert/bookings/{other.id}/cancel"
    assert (await client.post(api, json={}, headers=headers)).status_code in (400, 422)
    unsaid = await client.post(api, json={"reason": ""}, headers=headers)
    assert unsaid.status_code == 422 and "reason" in unsaid.json()["errors"]
    said = await client.post(api, json={"reason": "Empêchée"}, headers=headers)
    assert said.status_code == 200 and said.json()["status"] == "cancelled"
    # The client's page says who cancelled, why, and that the credits are released.
    await post_form(client, "/logout", {}, from_page="/expert")
    await login(client, "c@example.org")
    page = (await client.get(f"/me/bookings/{booked.id}")).text
    assert "Alice Expert a annulé ce rendez-vous" in page and "Je suis souffrante." in page


async def test_a_late_cancellation_says_what_was_kept(client: AsyncClient) -> None:
    expert = await make_published_expert(rules=Rules(cancel_free_hours=200))
    customer = await make_user("c@example.org")
    await give_credits(customer, expert, 10)
    booked = await book_call(expert, customer, next_monday_at(10))  # deadline passed
    await login(client, "c@example.org")
    page = f"/me/bookings/{booked.id}"
    done = await post_form(client, f"{page}/cancel", {"cost": "2"}, from_page=page)
    assert done.status_code == 303, done.text
    assert "2 crédits ont été retenus" in (await client.get(page)).text
