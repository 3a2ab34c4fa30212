"""Sign-up tells no one whether an email has an account, and nobody can use it to block or
take another person's sign-up.

Whatever the email, the visitor gets the same page ("check your inbox"), with the same
status and about the same time (a password is hashed either way), and nobody is logged in.
Each sign-up is kept apart: the emailed link proves the inbox, the password chosen picks
the sign-up, which becomes the account (and goes where the visitor was heading); the
others end. One inbox gets at most one link every LINK_EVERY. The owner of an existing
account is told by email that someone tried to sign up with their address.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from httpx import AsyncClient
from litestar import Litestar

from portal.accounts.services import expert_create, user_create
from portal.accounts.signup import LINK_EVERY, LINK_VALID_FOR, SignupForm, signup_request
from portal.accounts.tables import Expert, Signup, User
from portal.accounts.throttle import SIGNUP_ADDRESS_LIMIT
from portal.notify.tables import Notification
from portal.redis import connect
from portal.settings import get_settings
from portal.web.sessions import SESSION_KEY
from tests.integration.conftest import BASE
from tests.support import (
    PASSWORD,
    csrf_from,
    emails_written,
    finish_signup,
    login,
    make_published_expert,
    make_user,
    post_form,
    signup_link,
)
from workers.settings import WorkerSettings, purge_signups

NEW_PASSWORD = "another long phrase 2026"
ATTACKER_PASSWORD = "attacker's own phrase"
LINK = re.compile(r"http://127\.0\.0\.1:8000(/signup/confirm\?\S+)")


async def _signup(client: AsyncClient, email: str, **fields: str) -> Any:
    data = {"name": "Léa", "email": email, "password": NEW_PASSWORD} | fields
    return await post_form(client, "/signup", data, from_page="/signup")


def _main(html: str, email: str) -> str:
    """The page's content, without the address typed (shown back to the visitor)."""
    main = html[html.index("<main") : html.index("</main>")]
    return main.replace(email, "EMAIL")


async def _emails(kind: str) -> list[Notification]:
    await emails_written()
    return await Notification.objects().where(Notification.kind == kind).order_by(Notification.id)


@asynccontextmanager
async def _from_address(app: Litestar, address: str) -> AsyncIterator[AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with AsyncClient(transport=transport, base_url=BASE, follow_redirects=True) as browser:
        yield browser


async def _confirm(client: AsyncClient, link: str, password: str) -> Any:
    token = parse_qs(urlsplit(link).query)["token"][0]
    data = {"token": token, "password": password}
    return await post_form(client, "/signup/confirm", data, from_page="/signup")


async def test_an_existing_email_gets_the_same_answer_as_a_new_one(client: AsyncClient) -> None:
    await make_user("taken@example.org", locale="en")
    answers = {}
    for email in ("taken@example.org", "new@example.org"):
        response = await _signup(client, email)
        assert SESSION_KEY not in response.headers.get("set-cookie", "")
        answers[email] = (response.status_code, _main(response.text, email))
    assert answers["taken@example.org"] == answers["new@example.org"]
    status, page = answers["new@example.org"]
    assert status == 200 and "Vérifiez votre boîte mail" in page
    assert (await client.get("/me", follow_redirects=False)).status_code == 302  # not logged in
    # The existing account is untouched: its password is still the old one.
    await login(client, "taken@example.org")
    await post_form(client, "/logout", {}, from_page="/me")
    refused = await post_form(
        client, "/login", {"email": "taken@example.org", "password": NEW_PASSWORD}
    )
    assert refused.status_code == 400


async def test_both_answers_take_about_the_same_time(app: Litestar) -> None:
    """Both hash a password (argon2id), which is most of a sign-up's time: a path that
    skipped it would answer several times faster (measured: about 7 times). The medians of
    several tries stay within a factor 2 of each other."""
    await make_user("taken@example.org")
    timings: dict[str, list[float]] = {"taken": [], "new": []}
    for n in range(7):
        async with _from_address(app, f"198.51.100.{n + 1}") as visitor:
            token = csrf_from((await visitor.get("/signup")).text)
            for kind, email in (("taken", "taken@example.org"), ("new", f"new{n}@example.org")):
                data = {"email": email, "password": NEW_PASSWORD, "_csrf_token": token}
                started = time.perf_counter()
                assert (await visitor.post("/signup", data=data)).status_code == 200
                timings[kind].append(time.perf_counter() - started)
    taken, new = statistics.median(timings["taken"]), statistics.median(timings["new"])
    assert 0.5 < taken / new < 2, timings


async def test_the_owner_is_told_in_their_language(client: AsyncClient) -> None:
    owner = await make_user("taken@example.org", locale="en", name="Sam")
    await _signup(client, "Taken@Example.org")
    [notice] = await _emails("signup_existing")
    assert notice.user == owner.id and notice.to_address == "taken@example.org"
    assert notice.subject == "Someone tried to create an account with your email address"
    assert "already has an account" in notice.text
    assert "http://127.0.0.1:8000/login" in notice.text
    assert "http://127.0.0.1:8000/account" in notice.text  # to change the password
    assert await _emails("signup_confirm") == []
    await _signup(client, "taken@example.org")
    assert len(await _emails("signup_existing")) == 1  # once an hour is enough


async def test_a_new_account_starts_from_the_emailed_link_and_returns_to_the_slot(
    client: AsyncClient,
) -> None:
    await make_published_expert()
    target = "/e/alice-expert/book?channel=call&duration=30"
    await _signup(client, "Lea@Example.org", next=target)
    [email] = await _emails("signup_confirm")
    assert email.to_address == "lea@example.org" and email.subject == "Confirmez votre compte"
    # Before the link is used, the password opens nothing (and says nothing more).
    early = await post_form(
        client, "/login", {"email": "lea@example.org", "password": NEW_PASSWORD}
    )
    assert early.status_code == 400
    assert "L’e-mail ou le mot de passe est incorrect." in early.text
    page = await client.get(await signup_link("lea@example.org"))
    assert page.status_code == 200 and "lea@example.org" in page.text
    wrong = await finish_signup(client, "lea@example.org", "not the one")
    assert wrong.status_code == 400 and "Le mot de passe est incorrect." in wrong.text
    done = await finish_signup(client, "lea@example.org", NEW_PASSWORD)
    assert done.status_code == 303 and done.headers["location"] == target
    me = await client.get("/me")
    assert "Bienvenue\u202f! Votre compte est prêt." in me.text and "Bonjour Léa" in me.text
    user = await User.objects().get(User.email == "lea@example.org")
    assert user.email_confirmed and user.locale == "fr"
    assert await Signup.count() == 0


async def test_the_link_email_greets_the_address_not_the_name_typed(client: AsyncClient) -> None:
    """Anyone may sign up with any address: the name they type is not written to it."""
    spam = "Win a prize at http://evil.example"
    await _signup(client, "lea@example.org", name=spam)
    [email] = await _emails("signup_confirm")
    assert "evil.example" not in email.text + email.html + email.subject
    assert email.text.startswith("Bonjour lea@example.org,")
    assert "Bonjour lea@example.org," in email.html


async def test_nobody_can_block_or_take_an_owners_signup(app: Litestar) -> None:
    """The owner signs up; then someone signs up with the owner's address again and again,
    from many addresses, with a password and a name of their own. The owner is never
    refused, and the link in the owner's inbox still opens the owner's own sign-up."""
    async with _from_address(app, "203.0.113.10") as owner:
        assert (await _signup(owner, "owner@example.org", name="Owner")).status_code == 200
        for n in range(6):
            async with _from_address(app, f"192.0.2.{n + 1}") as attacker:
                again = await _signup(
                    attacker, "owner@example.org", name="Mallory", password=ATTACKER_PASSWORD
                )
                assert again.status_code == 200
        # The owner signing up once more is not refused either (the same answer).
        assert (await _signup(owner, "owner@example.org", name="Owner")).status_code == 200
        assert await Signup.count() == 8
        [email] = await _emails("signup_confirm")  # one link for all of them: no flood
        link = LINK.search(email.text).group(1)  # type: ignore[union-attr]
        assert (await owner.get(link)).status_code == 200
        done = await _confirm(owner, link, NEW_PASSWORD)
        assert done.status_code == 303 and done.headers["location"] == "/me"
        assert "Bonjour Owner" in (await owner.get("/me")).text
        # The others ended with it, and the link too.
        assert await Signup.count() == 0
        assert (await owner.get(link)).status_code == 404
    async with _from_address(app, "192.0.2.1") as attacker:
        refused = {"email": "owner@example.org", "password": ATTACKER_PASSWORD}
        assert (await post_form(attacker, "/login", refused)).status_code == 400
        assert (await _confirm(attacker, link, ATTACKER_PASSWORD)).status_code == 404


async def test_one_inbox_gets_at_most_one_link_every_twenty_minutes(app: Litestar) -> None:
    redis = connect(get_settings().redis_url or "")
    start = datetime.now(UTC) - 2 * LINK_EVERY
    try:
        for n, minutes in enumerate((0, 1, 5, 21)):
            form = SignupForm(
                email="lea@example.org",
                password=f"{NEW_PASSWORD} {n}",
                name="",
                locale="fr",
                timezone="Europe/Paris",
            )
            now = start + timedelta(minutes=minutes)
            await signup_request(redis=redis, ip=f"192.0.2.{n + 1}", form=form, now=now)
    finally:
        await redis.aclose()
    assert len(await _emails("signup_confirm")) == 2
    # The first link serves the sign-up made after it (and before the next one was sent).
    first = LINK.search((await _emails("signup_confirm"))[0].text).group(1)  # type: ignore[union-attr]
    async with _from_address(app, "203.0.113.7") as visitor:
        assert (await _confirm(visitor, first, f"{NEW_PASSWORD} 2")).status_code == 303


async def test_a_link_with_digits_of_other_scripts_is_not_found(client: AsyncClient) -> None:
    """Every part of the token is read as ASCII digits; anything else is a dead link."""
    await _signup(client, "new@example.org")
    token = parse_qs(
        urlsplit(LINK.search((await _emails("signup_confirm"))[0].text).group(1)).query
    )["token"][0]  # type: ignore[union-attr]
    user_id, expires, signature = token.split(".")
    for forged in (
        f"²{user_id}.{expires}.{signature}",
        f"{user_id}.²{expires}.{signature}",
        "1.9" * 30,
    ):
        assert (await client.get("/signup/confirm", params={"token": forged})).status_code == 404
        data = {"token": forged, "password": NEW_PASSWORD}
        posted = await post_form(client, "/signup/confirm", data, from_page="/signup")
        assert posted.status_code == 404, forged


async def test_signups_are_throttled_per_address(app: Litestar, client: AsyncClient) -> None:
    statuses = [
        (await _signup(client, f"bulk{n}@example.org")).status_code
        for n in range(SIGNUP_ADDRESS_LIMIT + 2)
    ]
    assert statuses == [200] * SIGNUP_ADDRESS_LIMIT + [429, 429]
    blocked = await _signup(client, "late@example.org")
    assert 0 < int(blocked.headers["retry-after"]) <= 3600
    assert re.search(
        r"Trop d’inscriptions depuis votre adresse\. Réessayez dans \d+ minutes\.", blocked.text
    )
    assert await User.count() == SIGNUP_ADDRESS_LIMIT
    async with _from_address(app, "198.51.100.20") as other:
        assert (await _signup(other, "elsewhere@example.org")).status_code == 200


async def test_signups_at_the_same_moment_answer_alike(client: AsyncClient) -> None:
    await make_user("taken@example.org")
    token = csrf_from((await client.get("/signup")).text)
    for email in ("taken@example.org", "new@example.org"):
        data = {"email": email, "password": NEW_PASSWORD, "_csrf_token": token}
        responses = await asyncio.gather(*(client.post("/signup", data=data) for _ in range(3)))
        assert [r.status_code for r in responses] == [200, 200, 200], email
    assert len(await _emails("signup_existing")) == 1
    assert await User.count().where(User.email == "new@example.org") == 1
    assert await Signup.count() == 3
    assert len(await _emails("signup_confirm")) == 1


async def test_a_pending_signup_never_blocks_creating_the_account(client: AsyncClient) -> None:
    """A stranger's sign-up with an address does not stop `portal create-client` or
    `create-expert` from making the account: their sign-ups and links end."""
    await _signup(client, "camille@example.org", password=ATTACKER_PASSWORD)
    await _signup(client, "alice@example.org", password=ATTACKER_PASSWORD)
    links = [LINK.search(e.text).group(1) for e in await _emails("signup_confirm")]  # type: ignore[union-attr]
    user = await user_create(email="camille@example.org", password=PASSWORD, name="Camille")
    expert = await expert_create(
        email="alice@example.org", password=PASSWORD, slug="alice", name="Alice"
    )
    assert user.email_confirmed and (await Expert.objects().get(Expert.id == expert.id))
    assert await User.count() == 2 and await Signup.count() == 0
    for link in links:
        assert (await _confirm(client, link, ATTACKER_PASSWORD)).status_code == 404
    await login(client, "camille@example.org")


async def test_expired_signups_and_the_addresses_they_held_are_purged(
    client: AsyncClient,
) -> None:
    assert purge_signups in WorkerSettings.functions
    assert any(job.coroutine is purge_signups for job in WorkerSettings.cron_jobs)
    redis = connect(get_settings().redis_url or "")
    long_ago = datetime.now(UTC) - LINK_VALID_FOR - timedelta(hours=1)
    try:
        for email, when in (
            ("old@example.org", long_ago),
            ("both@example.org", long_ago),
            ("both@example.org", datetime.now(UTC)),
            ("fresh@example.org", datetime.now(UTC)),
        ):
            form = SignupForm(
                email=email, password=NEW_PASSWORD, name="", locale="fr", timezone="Europe/Paris"
            )
            await signup_request(redis=redis, ip="192.0.2.1", form=form, now=when)
    finally:
        await redis.aclose()
    await make_user("confirmed@example.org")
    assert await purge_signups({}) == 2
    left = await User.select(User.email).order_by(User.email)
    assert [row["email"] for row in left] == [
        "both@example.org",
        "confirmed@example.org",
        "fresh@example.org",
    ]
    assert await Signup.count() == 2
    await finish_signup(client, "both@example.org", NEW_PASSWORD)
