"""Forgotten passwords, through the pages and the emails the worker writes: the same answer
for any address, a link that works once for an hour, replaced by a newer one, ended by a
login; the new password ends every session and API token made before it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from httpx import AsyncClient

from portal.accounts.reset import RESEND_AFTER, reset_request, reset_user
from portal.accounts.services import token_create, token_user
from portal.accounts.throttle import SIGNUP_ADDRESS_LIMIT
from portal.notify.tables import Notification
from portal.redis import connect
from portal.settings import get_settings
from tests.support import PASSWORD, emails_written, login, make_user, post_form

LINK = re.compile(r"https?://[^/\s]+(/password/reset/\S+)")
NEW = "a brand new passphrase"


async def _links(email: str = "c@example.org") -> list[str]:
    await emails_written()
    sent = (
        await Notification.objects()
        .where((Notification.kind == "password_reset") & (Notification.to_address == email))
        .order_by(Notification.id)
    )
    return [LINK.search(n.text).group(1) for n in sent]  # type: ignore[union-attr]


def _main(html: str) -> str:
    return html[html.index("<main") : html.index("</main>")]


async def _ask(client: AsyncClient, email: str) -> str:
    response = await post_form(client, "/password/forgot", {"email": email})
    assert response.status_code == 200, response.text
    return _main(response.text).replace(email, "EMAIL")


async def test_a_forgotten_password_is_reset_through_the_emailed_link(
    client: AsyncClient, other_client: AsyncClient
) -> None:
    await make_user("c@example.org")
    await login(other_client, "c@example.org")  # a session elsewhere, before the reset
    api_token = await token_create(user=(await make_user("x@example.org")))  # not theirs
    user = await token_user(api_token)
    assert user is not None
    own_token = await token_create(user=await _user("c@example.org"))
    assert "Forgot your password?" in (await client.get("/login", headers=_en())).text
    # The same page whether the address has an account or not; an email only for one.
    assert await _ask(client, "c@example.org") == await _ask(client, "nobody@example.org")
    assert await _links("nobody@example.org") == []
    [link] = await _links()
    page = await client.get(link)
    assert page.status_code == 200 and "c@example.org" in page.text
    short = await post_form(client, link, {"password": "short", "confirm": "short"})
    assert short.status_code == 422
    differ = await post_form(client, link, {"password": NEW, "confirm": NEW + "!"})
    assert differ.status_code == 422
    done = await post_form(client, link, {"password": NEW, "confirm": NEW})
    assert done.status_code == 303 and done.headers["location"] == "/login"
    # The login form that follows says why, is filled in with the address, and only once.
    after = (await client.get("/login")).text
    assert "Votre nouveau mot de passe est enregistré" in after
    assert 'value="c@example.org"' in after and " autofocus" in after
    assert 'value="c@example.org"' not in (await client.get("/login")).text
    # Used: the link ends, the old password too, the new one opens the account.
    assert (await client.get(link)).status_code == 404
    refused = await post_form(client, "/login", {"email": "c@example.org", "password": PASSWORD})
    assert refused.status_code == 400
    await login(client, "c@example.org", NEW)
    # The session opened before the reset is over, and so is the account's API token.
    assert (await other_client.get("/me", follow_redirects=False)).status_code in (302, 303)
    assert await token_user(own_token) is None
    assert await token_user(api_token) is not None  # another account's token is untouched


def _en() -> dict[str, str]:
    return {"Accept-Language": "en"}


async def _user(email: str):
    from portal.accounts.tables import User

    return await User.objects().get(User.email == email)


async def test_a_newer_link_or_a_login_ends_the_link_and_an_hour_ends_it_too(
    client: AsyncClient,
) -> None:
    await make_user("c@example.org")
    redis = connect(get_settings().redis_url or "")
    try:
        now = datetime.now(UTC)
        await reset_request(redis=redis, ip="192.0.2.1", email="c@example.org", now=now)
        await reset_request(redis=redis, ip="192.0.2.1", email="C@Example.org", now=now)
        [first] = await _links()  # asked twice at once: one email
        later = now + RESEND_AFTER + timedelta(seconds=1)
        await reset_request(redis=redis, ip="192.0.2.1", email="c@example.org", now=later)
        first_again, second = await _links()
        assert first_again == first
        assert (await client.get(first)).status_code == 404  # replaced
        token = second.rsplit("/", 1)[1]
        assert await reset_user(token, now=later + timedelta(minutes=59)) is not None
        assert await reset_user(token, now=later + timedelta(minutes=61)) is None  # expired
        await login(client, "c@example.org")
        assert (await client.get(second)).status_code == 404  # a login ended it
    finally:
        await redis.aclose()


async def test_links_that_are_not_one_say_so_and_asking_is_throttled(client: AsyncClient) -> None:
    for bad in ("1.abc", "x", "99999999999999999999999.ab", "1." + "f" * 64, "٣.ab"):
        response = await client.get(f"/password/reset/{bad}", headers=_en())
        assert response.status_code == 404
        assert "This link does not work any more" in response.text
    for _ in range(SIGNUP_ADDRESS_LIMIT):
        await _ask(client, "nobody@example.org")
    refused = await post_form(client, "/password/forgot", {"email": "nobody@example.org"})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    empty = await post_form(client, "/password/forgot", {"email": " "})
    assert empty.status_code == 422
