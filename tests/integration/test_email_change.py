"""Changing an account's address: the current password, a link to the new address, a
button on the link's page; the former address is told; an address with an account is
never revealed nor taken."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from httpx import AsyncClient

from portal.accounts.email_change import email_change_of
from portal.accounts.tables import EmailChange, Signup, User
from portal.notify.tables import Notification
from tests.support import (
    PASSWORD,
    emails_written,
    login,
    make_user,
    post_form,
    signup_link,
)

LINK = re.compile(r"https?://[^/\s]+(/account/email/\S+)")


async def _emails(kind: str) -> list[Notification]:
    await emails_written()
    return await Notification.objects().where(Notification.kind == kind).order_by(Notification.id)


async def _ask(client: AsyncClient, new_email: str, password: str = PASSWORD) -> object:
    return await post_form(
        client,
        "/account/email",
        {"new_email": new_email, "password": password},
        from_page="/account",
    )


async def test_the_address_changes_once_the_new_inbox_confirms(client: AsyncClient) -> None:
    await make_user("c@example.org")
    await login(client, "c@example.org")
    wrong = await _ask(client, "new@example.org", "not the password")
    assert wrong.status_code == 422 and "Le mot de passe actuel est incorrect." in wrong.text
    same = await _ask(client, "C@example.org")
    assert same.status_code == 422
    asked = await _ask(client, "New@Example.org")
    assert asked.status_code == 303
    [sent] = await _emails("email_change")
    assert sent.to_address == "new@example.org"
    link = LINK.search(sent.text).group(1)  # type: ignore[union-attr]
    page = await client.get(link)
    assert page.status_code == 200 and "new@example.org" in page.text
    assert (await User.objects().get(User.id == sent.user)).email == "c@example.org"  # not yet
    done = await post_form(client, link, {}, from_page=link)
    assert done.status_code == 303 and done.headers["location"] == "/account"
    user = await User.objects().get(User.id == sent.user)
    assert user is not None and user.email == "new@example.org"
    [told] = await _emails("email_changed")
    assert told.to_address == "c@example.org" and "new@example.org" in told.text
    assert (await client.get(link)).status_code == 404  # used
    await post_form(client, "/logout", {}, from_page="/account")
    old = await post_form(client, "/login", {"email": "c@example.org", "password": PASSWORD})
    assert old.status_code == 400
    await login(client, "new@example.org")


async def test_an_address_with_an_account_is_neither_revealed_nor_taken(
    client: AsyncClient,
) -> None:
    await make_user("c@example.org")
    await make_user("other@example.org")
    await login(client, "c@example.org")
    taken = await _ask(client, "other@example.org")
    free = await _ask(client, "free@example.org")
    assert taken.status_code == free.status_code == 303
    assert [n.to_address for n in await _emails("email_change")] == ["free@example.org"]


async def test_the_address_taken_meanwhile_is_refused_and_sign_ups_waiting_end(
    client: AsyncClient, other_client: AsyncClient
) -> None:
    await make_user("c@example.org")
    await login(client, "c@example.org")
    # Someone starts a sign-up with the address the client is moving to.
    signup = await post_form(
        other_client,
        "/signup",
        {"name": "X", "email": "new@example.org", "password": "another password!"},
        from_page="/signup",
    )
    assert signup.status_code == 200
    await signup_link("new@example.org")
    await _ask(client, "new@example.org")
    [sent] = await _emails("email_change")
    link = LINK.search(sent.text).group(1)  # type: ignore[union-attr]
    assert (await post_form(client, link, {}, from_page=link)).status_code == 303
    assert await Signup.count() == 0  # the inbox is the client's: its sign-ups ended
    # A link to an address an account has taken meanwhile is refused.
    await _ask(client, "later@example.org")
    *_, later = await _emails("email_change")
    await make_user("later@example.org")
    link = LINK.search(later.text).group(1)  # type: ignore[union-attr]
    refused = await post_form(client, link, {}, from_page=link)
    assert refused.status_code == 409
    user = await User.objects().get(User.id == sent.user)
    assert user is not None and user.email == "new@example.org"


async def test_a_newer_request_replaces_the_link_and_a_day_ends_it(client: AsyncClient) -> None:
    await make_user("c@example.org")
    await login(client, "c@example.org")
    await _ask(client, "one@example.org")
    await _ask(client, "two@example.org")
    first, second = await _emails("email_change")
    one = LINK.search(first.text).group(1)  # type: ignore[union-attr]
    two = LINK.search(second.text).group(1)  # type: ignore[union-attr]
    assert (await client.get(one)).status_code == 404
    token = two.rsplit("/", 1)[1]
    soon = datetime.now(UTC) + timedelta(hours=23)
    assert await email_change_of(token, now=soon) is not None
    assert await email_change_of(token, now=soon + timedelta(hours=2)) is None
    assert await EmailChange.count() == 1
