from __future__ import annotations

import asyncio

import pytest

from portal.accounts.services import (
    expert_create,
    token_create,
    token_revoke,
    token_user,
    user_authenticate,
    user_change_password,
    user_create,
    user_update_profile,
)
from portal.accounts.tables import ApiToken, Expert, Role, User
from portal.errors import ValidationFailed
from tests.support import PASSWORD, make_user


@pytest.fixture(autouse=True)
def _clean(clean: None) -> None:
    """Each test starts with empty tables."""


async def test_signup_normalises_and_refuses_a_second_account_for_the_same_email() -> None:
    user = await user_create(email=" Camille@Example.ORG ", password=PASSWORD, name=" Camille ")
    assert user.email == "camille@example.org"
    assert user.name == "Camille"
    assert user.role == Role.client.value
    assert user.password_hash.startswith("$argon2id$")
    with pytest.raises(ValidationFailed) as caught:
        await user_create(email="CAMILLE@example.org", password=PASSWORD)
    assert caught.value.errors == {"email": "An account already exists with this email."}
    assert await User.count() == 1


async def test_concurrent_signups_with_one_email_create_one_account() -> None:
    results = await asyncio.gather(
        *(user_create(email="race@example.org", password=PASSWORD) for _ in range(5)),
        return_exceptions=True,
    )
    created = [r for r in results if isinstance(r, User)]
    assert len(created) == 1
    assert all(isinstance(r, ValidationFailed) for r in results if r not in created)
    assert await User.count().where(User.email == "race@example.org") == 1


@pytest.mark.parametrize(
    ("email", "password", "field"),
    [
        ("not-an-email", PASSWORD, "email"),
        ("", PASSWORD, "email"),
        ("a@example.org", "short", "password"),
        ("a@example.org", "x" * 1025, "password"),
    ],
)
async def test_bad_signups_name_the_field(email: str, password: str, field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await user_create(email=email, password=password)
    assert field in caught.value.errors
    assert await User.count() == 0


async def test_long_passwords_work() -> None:
    long_password = "é" * 200  # 200 characters, 400 bytes
    await user_create(email="long@example.org", password=long_password)
    assert await user_authenticate(email="long@example.org", password=long_password)
    assert await user_authenticate(email="long@example.org", password="é" * 199) is None


async def test_authenticate_refuses_wrong_password_unknown_email_and_inactive() -> None:
    user = await make_user("a@example.org")
    assert (await user_authenticate(email="A@example.org", password=PASSWORD)).id == user.id
    assert await user_authenticate(email="a@example.org", password=PASSWORD + "x") is None
    assert await user_authenticate(email="nobody@example.org", password=PASSWORD) is None
    await User.update({User.is_active: False}).where(User.id == user.id)
    assert await user_authenticate(email="a@example.org", password=PASSWORD) is None


async def test_profile_and_password_changes_are_validated() -> None:
    user = await make_user()
    with pytest.raises(ValidationFailed) as caught:
        await user_update_profile(user=user, name="x", locale="de", timezone="Mars/Base")
    assert set(caught.value.errors) == {"locale", "timezone"}
    await user_update_profile(user=user, name="Camille", locale="en", timezone="America/Toronto")
    stored = await User.objects().get(User.id == user.id)
    assert (stored.locale, stored.timezone) == ("en", "America/Toronto")

    with pytest.raises(ValidationFailed) as caught:
        await user_change_password(user=user, current="wrong", new="abc", confirm="abd")
    assert set(caught.value.errors) == {"current_password", "new_password"}
    with pytest.raises(ValidationFailed) as caught:
        await user_change_password(user=user, current=PASSWORD, new="new password 1", confirm="x")
    assert set(caught.value.errors) == {"confirm_password"}
    await user_change_password(
        user=user, current=PASSWORD, new="new password 1", confirm="new password 1"
    )
    assert await user_authenticate(email=user.email, password="new password 1")
    assert await user_authenticate(email=user.email, password=PASSWORD) is None


async def test_expert_creation_checks_slug_and_creates_both_rows() -> None:
    expert = await expert_create(
        email="claire@example.org", password=PASSWORD, slug="Claire-Martin", name="Claire Martin"
    )
    assert expert.slug == "claire-martin"
    user = await User.objects().get(User.id == expert.user)
    assert user.role == Role.expert.value
    for slug in ("-bad", "with space", "x" * 65, ""):
        with pytest.raises(ValidationFailed) as caught:
            await expert_create(email="b@example.org", password=PASSWORD, slug=slug, name="B")
        assert "slug" in caught.value.errors
    with pytest.raises(ValidationFailed) as caught:
        await expert_create(
            email="c@example.org", password=PASSWORD, slug="claire-martin", name="C"
        )
    assert caught.value.errors == {"slug": "This address is already taken."}
    assert await Expert.count() == 1
    assert await User.count() == 1


async def test_tokens_are_stored_hashed_and_can_be_revoked() -> None:
    user = await make_user()
    token = await token_create(user=user, name="cli")
    row = await ApiToken.objects().first()
    assert (
        row is not None and token not in (row.token_hash, row.prefix) and row.prefix == token[:12]
    )
    assert (await token_user(token)).id == user.id
    assert await token_user(token + "x") is None
    assert await token_user("not-a-token") is None
    assert await token_revoke(token)
    assert await token_user(token) is None
    assert not await token_revoke(token)
