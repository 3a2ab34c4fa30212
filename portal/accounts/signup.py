"""Sign-up that does not tell whether an email has an account.

Whatever the email, the visitor is told to check their inbox, after the same work (a
password is always hashed), and nobody is logged in:
- a new address gets an account not confirmed yet and an email with a link;
- an address whose account is not confirmed yet gets the new password and name, and a new
  link (the earlier links stop working: a link is bound to the password it was sent for);
- the owner of a confirmed account is told by email that someone tried (once an hour).
The link opens a page that asks for the password chosen (`signup_confirm`): so a link sent
after someone else signed up with the address cannot open an account with their password,
and a password alone opens nothing before the link is used.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from redis.asyncio import Redis

from portal.accounts.passwords import hash_password
from portal.accounts.services import normalize_email, user_by_id, validate_new_user
from portal.accounts.tables import User
from portal.accounts.throttle import SignupThrottle
from portal.db import is_unique_violation, write_transaction
from portal.errors import ValidationFailed
from portal.notify.messages import signup_attempted, signup_confirmation
from portal.settings import get_settings
from portal.validation import whole_number

LINK_VALID_FOR = timedelta(hours=24)


def _signature(user_id: int, expires: int, password_hash: str) -> str:
    message = f"signup:{user_id}:{expires}:{password_hash}".encode()
    return hmac.new(get_settings().secret_key.encode(), message, hashlib.sha256).hexdigest()


def signup_token(user: User, now: datetime | None = None) -> str:
    expires = int(((now or datetime.now(UTC)) + LINK_VALID_FOR).timestamp())
    return f"{user.id}.{expires}.{_signature(user.id, expires, user.password_hash)}"


async def signup_token_user(token: str, now: datetime | None = None) -> User | None:
    """The account a sign-up link was sent for, if the link is genuine and still valid."""
    user_id, _, rest = token.partition(".")
    expires, _, signature = rest.partition(".")
    uid, until = whole_number(user_id), whole_number(expires, most=10**12)
    if uid is None or until is None or until < (now or datetime.now(UTC)).timestamp():
        return None
    user = await user_by_id(uid)
    if user is None:
        return None
    expected = _signature(user.id, until, user.password_hash)
    return user if hmac.compare_digest(signature.encode(), expected.encode()) else None


def _link(token: str, next_path: str) -> str:
    query = {"token": token} | ({"next": next_path} if next_path else {})
    return f"{get_settings().base_url}/signup/confirm?{urlencode(query)}"


async def signup_request(
    *,
    redis: Redis,
    ip: str,
    email: str,
    password: str,
    name: str,
    locale: str,
    timezone: str,
    next_path: str = "",
) -> str:
    """Do what a sign-up does (see the module); the normalised email, for the page. Only
    the form's own mistakes are refused (ValidationFailed), never an email taken; then the
    sign-up is counted (Throttled when there were too many)."""
    email, name = normalize_email(email), name.strip()
    errors = validate_new_user(
        email=email, password=password, name=name, locale=locale, timezone=timezone
    )
    if errors:
        raise ValidationFailed(errors)
    await SignupThrottle(redis).attempt(email=email, ip=ip)
    password_hash = await hash_password(password)  # whichever way it goes: the same cost
    profile = {"name": name, "locale": locale, "timezone": timezone}
    try:
        await _signup_write(email, password_hash, profile, next_path)
    except Exception as exc:  # PostgreSQL: a sign-up racing this one took the email first
        if not is_unique_violation(exc):
            raise
        await _signup_write(email, password_hash, profile, next_path)
    return email


async def _signup_write(
    email: str, password_hash: str, profile: dict[str, str], next_path: str
) -> None:
    async with write_transaction():
        user = await User.objects().where(User.email == email).first()
        if user is not None and user.email_confirmed:
            await signup_attempted(user, datetime.now(UTC).strftime("%Y%m%d%H"))
            return
        if user is None:
            user = User(email=email, password_hash=password_hash, email_confirmed=False, **profile)
            await user.save()
        else:  # not confirmed yet: whoever signs up now gets the next link
            user.password_hash, user.password_changed_at = password_hash, datetime.now(UTC)
            for column, value in profile.items():
                setattr(user, column, value)
            secret = [User.password_hash, User.password_changed_at]
            await user.save([*secret, User.name, User.locale, User.timezone])
        token = signup_token(user)
        await signup_confirmation(user, _link(token, next_path), token)


async def signup_confirm(*, user: User) -> User:
    """The account's address is proven (its link was used with its password)."""
    if not user.email_confirmed:
        user.email_confirmed = True
        await user.save([User.email_confirmed])
    return user
