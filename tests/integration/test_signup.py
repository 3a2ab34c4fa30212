"""Sign-up tells no one whether an email has an account, and is throttled.

Whatever the email, the visitor gets the same page ("check your inbox"), with the same
status and about the same time (a password is hashed either way), and nobody is logged in.
A new address receives a link: opening it and giving the password chosen creates the
session and goes where the visitor was heading. The owner of an existing account is told
by email that someone tried to sign up with their address.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from httpx import AsyncClient
from litestar import Litestar

from portal.accounts.tables import User
from portal.accounts.throttle import SIGNUP_ADDRESS_LIMIT, SIGNUP_EMAIL_LIMIT
from portal.notify.tables import Notification
from portal.web.sessions import SESSION_KEY
from tests.integration.conftest import BASE
from tests.support import (
    csrf_from,
    finish_signup,
    login,
    make_published_expert,
    make_user,
    post_form,
    signup_link,
)

NEW_PASSWORD = "another long phrase 2026"
LINK = re.compile(r"http://127\.0\.0\.1:8000(/signup/confirm\?\S+)")


async def _signup(client: AsyncClient, email: str, **fields: str) -> Any:
    data = {"name": "Léa", "email": email, "password": NEW_PASSWORD} | fields
    return await post_form(client, "/signup", data, from_page="/signup")


def _main(html: str, email: str) -> str:
    """The page's content, without the address typed (shown back to the visitor)."""
    main = html[html.index("<main") : html.index("</main>")]
    return main.replace(email, "EMAIL")


async def _emails(kind: str) -> list[Notification]:
    return await Notification.objects().where(Notification.kind == kind).order_by(Notification.id)


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


async def test_both_answers_take_about_the_same_time(client: AsyncClient) -> None:
    await make_user("taken@example.org")
    timings: dict[str, list[float]] = {"taken": [], "new": []}
    for n in range(3):
        for kind, email in (("taken", "taken@example.org"), ("new", f"new{n}@example.org")):
            token = csrf_from((await client.get("/signup")).text)
            data = {"email": email, "password": NEW_PASSWORD, "_csrf_token": token}
            started = time.perf_counter()
            await client.post("/signup", data=data)
            timings[kind].append(time.perf_counter() - started)
    # Both hash a password (argon2id): the fastest of each is within a factor of the other.
    assert min(timings["taken"]) > 0.4 * min(timings["new"]), timings


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


async def test_a_later_signup_cannot_take_a_pending_account(client: AsyncClient) -> None:
    """Someone signs up first with another person's address and a password of theirs; the
    owner signs up in turn: only the owner's link and password open the account."""
    await _signup(client, "owner@example.org", password="attacker's own phrase")
    await _signup(client, "owner@example.org", password=NEW_PASSWORD)
    first, second = [LINK.search(e.text).group(1) for e in await _emails("signup_confirm")]  # type: ignore[union-attr]
    assert (await client.get(first)).status_code == 404  # died with its password
    assert "n’est plus valable" in (await client.get(first)).text
    for link, password, status in (
        (first, "attacker's own phrase", 404),
        (second, "attacker's own phrase", 400),
        (second, NEW_PASSWORD, 303),
    ):
        data = {"token": parse_qs(urlsplit(link).query)["token"][0], "password": password}
        response = await post_form(client, urlsplit(link).path, data, from_page="/signup")
        assert response.status_code == status, (link, password)


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
    assert "Trop d’inscriptions depuis votre adresse" in blocked.text
    assert await User.count() == SIGNUP_ADDRESS_LIMIT
    async with _from_address(app, "198.51.100.20") as other:
        assert (await _signup(other, "elsewhere@example.org")).status_code == 200


async def test_one_inbox_is_not_flooded_from_many_addresses(app: Litestar) -> None:
    statuses = []
    for n in range(SIGNUP_EMAIL_LIMIT + 1):
        async with _from_address(app, f"192.0.2.{n + 1}") as visitor:
            statuses.append((await _signup(visitor, "lea@example.org")).status_code)
    assert statuses == [200] * SIGNUP_EMAIL_LIMIT + [429]
    assert len(await _emails("signup_confirm")) == SIGNUP_EMAIL_LIMIT


@asynccontextmanager
async def _from_address(app: Litestar, address: str) -> AsyncIterator[AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with AsyncClient(transport=transport, base_url=BASE, follow_redirects=True) as browser:
        yield browser


async def test_signups_at_the_same_moment_answer_alike(client: AsyncClient) -> None:
    await make_user("taken@example.org")
    token = csrf_from((await client.get("/signup")).text)
    for email in ("taken@example.org", "new@example.org"):
        data = {"email": email, "password": NEW_PASSWORD, "_csrf_token": token}
        responses = await asyncio.gather(*(client.post("/signup", data=data) for _ in range(3)))
        assert [r.status_code for r in responses] == [200, 200, 200], email
    assert len(await _emails("signup_existing")) == 1
    assert await User.count().where(User.email == "new@example.org") == 1
