"""Sign-up that does not tell whether an email has an account, and that nobody can use to
block or take another person's.

Whatever the email, the visitor is told to check their inbox, after the same work (a
password is always hashed), and nobody is logged in:
- an address without an account: the sign-up is kept as it is (a Signup row: its own
  password, name, language, where to go; for LINK_VALID_FOR), beside any other sign-up
  for the address — none replaces another. The address itself is held by a User not
  confirmed yet, which has no password and opens nothing;
- an address with an account: its owner is told by email that someone tried (once an hour).

The emailed link proves the inbox, not a sign-up: its page asks for the password chosen,
and the sign-up with that password becomes the account; the others end with it, and so do
the links. So someone who signs up first with another person's address gets nothing (the
link goes to that person), and cannot stop them either: the owner's own sign-up is kept,
and any link in their inbox opens it with their password.

One inbox gets at most one link every LINK_EVERY (a link sent meanwhile serves every
sign-up of the address: it is valid LINK_VALID_FOR), whatever the number of sign-ups; so
the answer never has to change, and no sign-up is ever refused because of its email.
A sign-up is refused only for its form's mistakes and for too many sign-ups from one
client address (see throttle.py). An address keeps at most PENDING_MAX sign-ups (the
newest). Expired sign-ups, and addresses no sign-up holds any more, are purged by the
worker (`signups_purge`).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from redis.asyncio import Redis

from portal.accounts.passwords import hash_password, verify_password
from portal.accounts.services import normalize_email, user_by_id, validate_new_user
from portal.accounts.tables import Signup, User
from portal.accounts.throttle import SignupThrottle
from portal.db import is_unique_violation, write_transaction
from portal.errors import ValidationFailed
from portal.events.log import record
from portal.settings import get_settings
from portal.validation import whole_number

LINK_VALID_FOR = timedelta(hours=24)
LINK_EVERY = timedelta(minutes=20)
PENDING_MAX = 20


@dataclass(frozen=True, slots=True)
class SignupForm:
    email: str
    password: str
    name: str
    locale: str
    timezone: str
    next_path: str = ""


class _Raced(Exception):
    """The address changed under this sign-up (confirmed or purged meanwhile): again."""


def _signature(user: User, expires: int) -> str:
    message = f"signup:{user.id}:{user.email}:{expires}".encode()
    return hmac.new(get_settings().secret_key.encode(), message, hashlib.sha256).hexdigest()


def signup_token(user: User, now: datetime | None = None) -> str:
    """A link's token: the address (its id and email, signed) and until when it works."""
    expires = int(((now or datetime.now(UTC)) + LINK_VALID_FOR).timestamp())
    return f"{user.id}.{expires}.{_signature(user, expires)}"


async def signup_token_user(token: str, now: datetime | None = None) -> User | None:
    """The address a sign-up link was sent to, if the link is genuine, still valid, and
    the address still waits for a sign-up to be confirmed."""
    now = now or datetime.now(UTC)
    user_id, _, rest = token.partition(".")
    expires, _, signature = rest.partition(".")
    uid, until = whole_number(user_id), whole_number(expires, most=10**12)
    if uid is None or until is None or until < now.timestamp():
        return None
    user = await user_by_id(uid)
    if user is None or user.email_confirmed:
        return None
    if not hmac.compare_digest(signature.encode(), _signature(user, until).encode()):
        return None
    pending = Signup.exists().where((Signup.user == user.id) & (Signup.expires_at > now))
    return user if await pending else None


def signup_link(user: User, at: datetime) -> str:
    """The link emailed for a sign-up made at `at` (valid LINK_VALID_FOR from then)."""
    token = signup_token(user, at)
    return f"{get_settings().base_url}/signup/confirm?{urlencode({'token': token})}"


async def signup_request(
    *, redis: Redis, ip: str, form: SignupForm, now: datetime | None = None
) -> str:
    """Do what a sign-up does (see the module); the normalised email, for the page. Only
    the form's own mistakes are refused (ValidationFailed), never an email; then the
    sign-up is counted (Throttled when its client address made too many)."""
    email, name = normalize_email(form.email), form.name.strip()
    errors = validate_new_user(
        email=email, password=form.password, name=name, locale=form.locale, timezone=form.timezone
    )
    if errors:
        raise ValidationFailed(errors)
    await SignupThrottle(redis).attempt(ip=ip)
    fields = {
        "password_hash": await hash_password(form.password),  # whichever way: the same cost
        "name": name,
        "locale": form.locale,
        "timezone": form.timezone,
        "next_path": form.next_path,
    }
    for last_try in (False, False, True):
        try:
            await _signup_write(email, fields, now or datetime.now(UTC))
            break
        except Exception as exc:  # a sign-up, a purge or a confirmation raced this one
            if last_try or not (isinstance(exc, _Raced) or is_unique_violation(exc)):
                raise
    return email


async def _signup_write(email: str, fields: dict[str, str], now: datetime) -> None:
    async with write_transaction():
        user = await User.objects().where(User.email == email).first()
        if user is not None and user.email_confirmed:
            hour = now.strftime("%Y%m%d%H")  # the owner is told once an hour at most
            await record(
                "account.signup_attempted", f"signup-existing:{user.id}:{hour}", user=user.id
            )
            return
        # Made, or touched (which locks it): sign-ups of one address queue here.
        user = await _address_held(email, user, fields["locale"], fields["timezone"], now)
        linked = Signup.exists().where(
            (Signup.user == user.id)
            & Signup.link_sent.eq(True)
            & (Signup.created_at > now - LINK_EVERY)
        )
        signup = Signup(
            user=user.id,
            created_at=now,
            expires_at=now + LINK_VALID_FOR,
            link_sent=not await linked,
            **fields,  # type: ignore[arg-type]
        )
        await signup.save()
        kept = Signup.select(Signup.id).where(Signup.user == user.id)
        beyond = (await kept.order_by(Signup.id, ascending=False))[PENDING_MAX:]
        if beyond:
            await Signup.delete().where(Signup.id.is_in([row["id"] for row in beyond]))
        if signup.link_sent:
            await record(
                "account.signup_requested",
                # Ids come again on SQLite once purged: the moment makes the key new.
                f"signup:{user.id}:{signup.id}:{now.timestamp():.6f}",
                user=user.id,
                signup=signup.id,
                at=now.isoformat(),
            )


async def _address_held(
    email: str, user: User | None, locale: str, timezone: str, now: datetime
) -> User:
    """The unconfirmed User that holds the address, made or touched (the purge spares an
    address touched within LINK_VALID_FOR), in the latest sign-up's language (the link's
    email is written in it)."""
    if user is None:
        user = User(email=email, password_hash="", email_confirmed=False, password_changed_at=now)
        user.locale, user.timezone = locale, timezone
        await user.save()
        return user
    held = {User.password_hash: "", User.name: ""}  # what a sign-up once wrote there: gone
    touched = (
        await User.update(
            {User.password_changed_at: now, User.locale: locale, User.timezone: timezone} | held  # type: ignore[arg-type]
        )
        .where((User.id == user.id) & User.email_confirmed.eq(False))
        .returning(User.id)
    )
    if not touched:
        raise _Raced()
    user.locale, user.timezone = locale, timezone
    return user


async def signup_matching(
    *, user: User, password: str, now: datetime | None = None
) -> Signup | None:
    """The address's sign-up (still valid) whose password this is, newest first."""
    pending = (
        await Signup.objects()
        .where((Signup.user == user.id) & (Signup.expires_at > (now or datetime.now(UTC))))
        .order_by(Signup.id, ascending=False)
        .limit(PENDING_MAX)
    )
    for signup in pending:
        if await verify_password(signup.password_hash, password):
            return signup
    return None


async def signup_confirm(*, user: User, signup: Signup) -> User | None:
    """The sign-up becomes the account (the address is proven); every other sign-up of
    the address ends. None if the address was confirmed meanwhile."""
    now = datetime.now(UTC)
    async with write_transaction():
        confirmed = (
            await User.update(
                {
                    User.password_hash: signup.password_hash,
                    User.name: signup.name,
                    User.locale: signup.locale,
                    User.timezone: signup.timezone,
                    User.email_confirmed: True,
                    User.created_at: now,
                    User.password_changed_at: now,
                }
            )
            .where((User.id == user.id) & User.email_confirmed.eq(False))
            .returning(User.id)
        )
        if not confirmed:
            return None
        await Signup.delete().where(Signup.user == user.id)
    return await user_by_id(user.id)


async def signups_purge(*, now: datetime | None = None) -> int:
    """Forget expired sign-ups, and addresses that no sign-up holds any more (untouched for
    LINK_VALID_FOR: a sign-up racing the purge keeps its address). The number of sign-ups
    forgotten."""
    now = now or datetime.now(UTC)
    async with write_transaction():
        expired = await Signup.delete().where(Signup.expires_at <= now).returning(Signup.id)
        await User.delete().where(
            User.email_confirmed.eq(False)
            & (User.password_changed_at < now - LINK_VALID_FOR)
            & User.id.not_in(Signup.select(Signup.user))
        )
    return len(expired)
