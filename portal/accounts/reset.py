"""Forgotten passwords: a link by email, that works once, for RESET_VALID_FOR.

Asking (`reset_request`) answers the same whether the email has an account or not; for an
account, it writes the account's one reset (a newer request replaces it, so an older link
stops working; asked again within RESEND_AFTER, nothing new is sent) and records the event
that the worker turns into the email (the link's secret: see links.py). Using the link
(`reset_finish`) sets the new password, which ends every session and API token made before
it (see services.password_set); a login ends the link too (`reset_forget`).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from portal.accounts.links import link_parts, link_secret, secret_hash, secret_matches
from portal.accounts.passwords import hash_password
from portal.accounts.services import check_new_password, normalize_email, password_set
from portal.accounts.tables import PasswordReset, User
from portal.accounts.throttle import ResetThrottle
from portal.db import write_transaction
from portal.events.log import record
from portal.settings import get_settings

RESET_VALID_FOR = timedelta(hours=1)
RESEND_AFTER = timedelta(minutes=2)


def reset_secret(seed: str) -> str:
    return link_secret("password-reset", seed)


def reset_link(reset_id: int, seed: str) -> str:
    return f"{get_settings().base_url}/password/reset/{reset_id}.{reset_secret(seed)}"


async def reset_request(*, redis: Redis, ip: str, email: str, now: datetime | None = None) -> str:
    """Email a reset link to the account of `email`, if there is one; the address as
    normalized (what the page shows back). Throttled per client address."""
    await ResetThrottle(redis).attempt(ip=ip)
    now = now or datetime.now(UTC)
    email = normalize_email(email)
    async with write_transaction():
        user = await User.objects().where(User.email == email).first()
        if user is None or not (user.is_active and user.email_confirmed):
            return email
        current = await PasswordReset.objects().where(PasswordReset.user == user.id).first()
        if current is not None and current.created_at > now - RESEND_AFTER:
            return email  # one was just sent: it works
        await PasswordReset.delete().where(PasswordReset.user == user.id)
        seed = secrets.token_urlsafe(24)
        reset = PasswordReset(
            user=user.id,
            token_hash=secret_hash(reset_secret(seed)),
            created_at=now,
            expires_at=now + RESET_VALID_FOR,
        )
        await reset.save()
        await record(
            "account.password_reset",
            f"password-reset:{reset.token_hash}",  # ids may be used again, hashes not
            user=user.id,
            reset=reset.id,
            seed=seed,
        )
    return email


async def reset_user(token: str, now: datetime | None = None) -> User | None:
    """The account a reset link opens, if the link is the account's current one, unused
    and not expired."""
    reset = await _reset_of(token, now or datetime.now(UTC))
    if reset is None:
        return None
    return await User.objects().where(User.id == reset.user).first()


async def _reset_of(token: str, now: datetime) -> PasswordReset | None:
    if (parts := link_parts(token)) is None:
        return None
    reset = await PasswordReset.objects().where(PasswordReset.id == parts[0]).first()
    if reset is None or reset.expires_at <= now:
        return None
    return reset if secret_matches(reset.token_hash, parts[1]) else None


async def reset_finish(
    *, token: str, password: str, confirm: str, now: datetime | None = None
) -> User | None:
    """Set the new password through the link, once: the account, or None when the link
    does not work (any more). ValidationFailed for a password that will not do."""
    now = now or datetime.now(UTC)
    check_new_password(password, confirm)
    if await _reset_of(token, now) is None:
        return None
    password_hash = await hash_password(password)
    async with write_transaction():
        reset = await _reset_of(token, now)
        if reset is None:
            return None
        # Used once: of two submissions at once, one deletes it, the other finds nothing.
        gone = (
            await PasswordReset.delete()
            .where(PasswordReset.id == reset.id)
            .returning(PasswordReset.id)
        )
        if not gone:
            return None
        user = await User.objects().where(User.id == reset.user).first()
        if user is None:
            return None
        await password_set(user, password_hash, now)
    return user


async def reset_forget(user_id: int) -> None:
    """A login ends the account's reset link: whoever logged in knows the password."""
    await PasswordReset.delete().where(PasswordReset.user == user_id)
