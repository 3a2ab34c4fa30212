"""Changing an account's email address: proven by a link sent to the new address.

Asking (`email_change_request`) takes the current password (throttled like a login) and
answers the same whether the new address is free or already an account's (nothing is sent
then: a logged-in visitor must not learn who has an account). The link works for
CHANGE_VALID_FOR, once; a newer request replaces it. Opening it and confirming
(`email_change_confirm`) moves the account to the new address, unless an account took it
meanwhile; sign-ups waiting on that address end (its inbox has just been proven to be
this account's owner's). The former address is told, so a change nobody asked for is
noticed. The link's secret: see links.py.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from portal.accounts.links import link_parts, link_secret, secret_hash, secret_matches
from portal.accounts.passwords import verify_password
from portal.accounts.services import check_email, normalize_email
from portal.accounts.tables import EmailChange, User
from portal.accounts.throttle import LoginThrottle, Throttled
from portal.db import write_transaction
from portal.errors import N_, ValidationFailed
from portal.events.log import record
from portal.settings import get_settings

CHANGE_VALID_FOR = timedelta(hours=24)


def change_secret(seed: str) -> str:
    return link_secret("email-change", seed)


def change_link(change_id: int, seed: str) -> str:
    return f"{get_settings().base_url}/account/email/{change_id}.{change_secret(seed)}"


async def email_change_request(
    *, redis: Redis, user: User, new_email: str, password: str, ip: str
) -> str:
    """Send a link to `new_email` (normalized, returned) that moves the account there."""
    email = normalize_email(new_email)
    errors: dict[str, str] = {}
    check_email(email, errors)
    if not errors and email == user.email:
        errors["new_email"] = N_("This is already your address.")
    if errors:
        raise ValidationFailed({"new_email": errors.get("email", errors.get("new_email", ""))})
    throttle = LoginThrottle(redis)
    attempt = await throttle.attempt(email=user.email, ip=ip)
    if attempt.refused_by:
        raise Throttled(attempt.wait)
    if not await verify_password(user.password_hash, password):
        raise ValidationFailed({"password": N_("The current password is not correct.")})
    await throttle.succeeded(email=user.email, ip=ip)
    now = datetime.now(UTC)
    async with write_transaction():
        await EmailChange.delete().where(EmailChange.user == user.id)
        taken = await User.exists().where((User.email == email) & User.email_confirmed.eq(True))
        if taken:
            return email  # the same answer; nothing to send
        seed = secrets.token_urlsafe(24)
        change = EmailChange(
            user=user.id,
            new_email=email,
            token_hash=secret_hash(change_secret(seed)),
            created_at=now,
            expires_at=now + CHANGE_VALID_FOR,
        )
        await change.save()
        await record(
            "account.email_change_requested",
            f"email-change:{change.token_hash}",
            user=user.id,
            change=change.id,
            seed=seed,
            new_email=email,
        )
    return email


async def email_change_of(token: str, now: datetime | None = None) -> EmailChange | None:
    """The change a link confirms, if it is the account's current one and not expired."""
    if (parts := link_parts(token)) is None:
        return None
    change = await EmailChange.objects().where(EmailChange.id == parts[0]).first()
    if change is None or change.expires_at <= (now or datetime.now(UTC)):
        return None
    return change if secret_matches(change.token_hash, parts[1]) else None


class AddressTaken(ValidationFailed):
    def __init__(self) -> None:
        super().__init__({"new_email": N_("This address now belongs to another account.")})


async def email_change_confirm(token: str, now: datetime | None = None) -> User | None:
    """Move the account to the new address; None if the link does not work (any more),
    AddressTaken if an account has the address now."""
    async with write_transaction():
        change = await email_change_of(token, now)
        if change is None:
            return None
        user = await User.objects().where(User.id == change.user).first()
        holder = await User.objects().where(User.email == change.new_email).first()
        if user is None:
            return None
        if holder is not None and holder.email_confirmed:
            await EmailChange.delete().where(EmailChange.id == change.id)
            raise AddressTaken()
        if holder is not None:  # only sign-ups waited on it: they end
            await User.delete().where(User.id == holder.id)
        former = user.email
        await User.update({User.email: change.new_email}).where(User.id == user.id)
        await EmailChange.delete().where(EmailChange.id == change.id)
        await record(
            "account.email_changed",
            f"email-changed:{change.token_hash}",
            user=user.id,
            former=former,
            new_email=change.new_email,
        )
        user.email = change.new_email
    return user
