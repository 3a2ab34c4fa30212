"""Account services: sign-up, authentication, profile, passwords, experts and API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from datetime import UTC, datetime, timedelta

from portal.accounts.passwords import hash_password, needs_rehash, verify_password
from portal.accounts.tables import ApiToken, Expert, Role, User
from portal.db import is_unique_violation, write_transaction
from portal.errors import N_, ValidationFailed
from portal.i18n import DEFAULT_TIMEZONE, LOCALES, timezones
from portal.validation import check_text

PASSWORD_MIN = 10
PASSWORD_MAX = 1024  # argon2 takes any length; this only bounds the work per request
EMAIL_MAX = 254
NAME_MAX = 120

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
EMAIL_TAKEN = N_("An account already exists with this email.")
SLUG_TAKEN = N_("This address is already taken.")
TOKEN_PREFIX = "ptl_"  # noqa: S105 (a prefix, not a secret)
TOKEN_TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is a hint, not a write per call


def normalize_email(raw: str) -> str:
    """One spelling per address: Unicode NFKC, trimmed, lower-cased."""
    return unicodedata.normalize("NFKC", raw).strip().lower()


def check_email(email: str, errors: dict[str, str]) -> None:
    if not email:
        errors["email"] = N_("Enter your email address.")
    elif len(email) > EMAIL_MAX or not _EMAIL_RE.match(email):
        errors["email"] = N_("Enter a valid email address.")
    check_text(errors, "email", email)


def _check_password(password: str, errors: dict[str, str], field: str = "password") -> None:
    if len(password) < PASSWORD_MIN:
        errors[field] = N_("The password must have at least 10 characters.")
    elif len(password) > PASSWORD_MAX:
        errors[field] = N_("The password must have at most 1024 characters.")


def _check_profile(name: str, locale: str, timezone: str, errors: dict[str, str]) -> None:
    if len(name) > NAME_MAX:
        errors["name"] = N_("The name must have at most 120 characters.")
    check_text(errors, "name", name)
    if locale not in LOCALES:
        errors["locale"] = N_("Choose French or English.")
    if timezone not in timezones():
        errors["timezone"] = N_("Choose a time zone from the list.")


async def user_by_email(email: str) -> User | None:
    return await User.objects().where(User.email == normalize_email(email)).first()


async def user_by_id(user_id: int) -> User | None:
    return await User.objects().where((User.id == user_id) & (User.is_active.eq(True))).first()


def validate_new_user(
    *, email: str, password: str, name: str, locale: str, timezone: str
) -> dict[str, str]:
    errors: dict[str, str] = {}
    check_email(email, errors)
    _check_password(password, errors)
    _check_profile(name, locale, timezone, errors)
    return errors


async def _insert_user(
    *, email: str, password_hash: str, name: str, role: Role, **profile: str
) -> User:
    """Inside a write transaction: the email is unique, the database says so too. An
    address only held by sign-ups not confirmed (anyone may sign up with any address)
    becomes this account, and those sign-ups end."""
    held = await User.objects().where(User.email == email).first()
    if held is not None and held.email_confirmed:
        raise ValidationFailed({"email": EMAIL_TAKEN})
    if held is not None:
        await held.remove()  # with its sign-ups: their links die
    user = User(email=email, password_hash=password_hash, name=name, role=role.value, **profile)  # type: ignore[arg-type]
    await user.save()
    return user


async def user_create(
    *,
    email: str,
    password: str,
    name: str = "",
    role: Role = Role.client,
    locale: str = "fr",
    timezone: str = DEFAULT_TIMEZONE,
) -> User:
    email, name = normalize_email(email), name.strip()
    errors = validate_new_user(
        email=email, password=password, name=name, locale=locale, timezone=timezone
    )
    taken = User.exists().where((User.email == email) & User.email_confirmed.eq(True))
    if "email" not in errors and await taken:
        errors["email"] = EMAIL_TAKEN
    if errors:
        raise ValidationFailed(errors)
    password_hash = await hash_password(password)
    try:
        async with write_transaction():
            return await _insert_user(
                email=email,
                password_hash=password_hash,
                name=name,
                role=role,
                locale=locale,
                timezone=timezone,
            )
    except Exception as exc:  # PostgreSQL: a racing signup took the email first
        if is_unique_violation(exc):
            raise ValidationFailed({"email": EMAIL_TAKEN}) from exc
        raise


async def user_authenticate(*, email: str, password: str) -> User | None:
    """The user if the credentials match an active, confirmed account, else None (same cost
    either way: a sign-up not confirmed yet opens nothing and says nothing)."""
    user = await user_by_email(email)
    usable = user is not None and user.is_active and user.email_confirmed
    stored = user.password_hash if user is not None and usable else None
    if not await verify_password(stored, password):
        return None
    assert user is not None
    if needs_rehash(user.password_hash):
        user.password_hash = await hash_password(password)
        await user.save([User.password_hash])
    return user


async def user_update_profile(*, user: User, name: str, locale: str, timezone: str) -> User:
    name = name.strip()
    errors: dict[str, str] = {}
    _check_profile(name, locale, timezone, errors)
    if errors:
        raise ValidationFailed(errors)
    user.name, user.locale, user.timezone = name, locale, timezone
    await user.save([User.name, User.locale, User.timezone])
    return user


async def user_set_locale(*, user: User, locale: str) -> None:
    if locale in LOCALES and user.locale != locale:
        user.locale = locale
        await user.save([User.locale])


async def user_set_timezone(*, user: User, timezone: str) -> None:
    if timezone in timezones() and user.timezone != timezone:
        user.timezone = timezone
        await user.save([User.timezone])


async def user_set_email_choices(
    *, user: User, remind_bookings: bool, remind_deadlines: bool, notify_credits: bool
) -> None:
    """Which reminders and notices the user receives."""
    await User.update(
        {
            User.remind_bookings: remind_bookings,
            User.remind_deadlines: remind_deadlines,
            User.notify_credits: notify_credits,
        }
    ).where(User.id == user.id)


async def user_change_password(*, user: User, current: str, new: str, confirm: str) -> User:
    errors: dict[str, str] = {}
    if not await verify_password(user.password_hash, current):
        errors["current_password"] = N_("The current password is not correct.")
    _check_new(new, confirm, errors, "new_password", "confirm_password")
    if errors:
        raise ValidationFailed(errors)
    await password_set(user, await hash_password(new), datetime.now(UTC))
    return user


def check_new_password(new: str, confirm: str) -> None:
    """ValidationFailed (`password`, `confirm`) unless `new` will do and is typed twice."""
    errors: dict[str, str] = {}
    _check_new(new, confirm, errors, "password", "confirm")
    if errors:
        raise ValidationFailed(errors)


def _check_new(new: str, confirm: str, errors: dict[str, str], field: str, again: str) -> None:
    _check_password(new, errors, field=field)
    if field not in errors and new != confirm:
        errors[again] = N_("The two new passwords differ.")


async def password_set(user: User, password_hash: str, now: datetime) -> None:
    """A new password (hashed by the caller, outside any transaction): the sessions made
    before it are refused from now on (see web/sessions.py), the API tokens end with it."""
    user.password_hash = password_hash
    user.password_changed_at = now
    async with write_transaction():
        await user.save([User.password_hash, User.password_changed_at])
        # Whoever had the old password may have made tokens: they end with it.
        await ApiToken.update({ApiToken.revoked_at: now}).where(
            (ApiToken.user == user.id) & ApiToken.revoked_at.is_null()
        )


async def expert_create(
    *, email: str, password: str, slug: str, name: str, timezone: str = DEFAULT_TIMEZONE
) -> Expert:
    email, slug, name = normalize_email(email), slug.strip().lower(), name.strip()
    errors = validate_new_user(
        email=email, password=password, name=name, locale="fr", timezone=timezone
    )
    if not _SLUG_RE.match(slug):
        errors["slug"] = N_("Use 1 to 64 lower-case letters, digits or hyphens.")
    if not name:
        errors["name"] = N_("Enter the name clients will see.")
    if errors:
        raise ValidationFailed(errors)
    password_hash = await hash_password(password)
    try:
        async with write_transaction():
            if await Expert.exists().where(Expert.slug == slug):
                raise ValidationFailed({"slug": SLUG_TAKEN})
            user = await _insert_user(
                email=email,
                password_hash=password_hash,
                name=name,
                role=Role.expert,
                timezone=timezone,
            )
            expert = Expert(user=user.id, slug=slug, display_name=name)
            await expert.save()
    except Exception as exc:  # PostgreSQL: a racing creation took the email or the slug
        if is_unique_violation(exc):
            raise ValidationFailed({"slug": SLUG_TAKEN, "email": EMAIL_TAKEN}) from exc
        raise
    return expert


async def expert_update_profile(
    *, expert: Expert, display_name: str, headline: str, bio: str
) -> Expert:
    """What clients read about the expert above the charter."""
    display_name, headline, bio = display_name.strip(), headline.strip(), bio.strip()
    errors: dict[str, str] = {}
    if not 1 <= len(display_name) <= NAME_MAX:
        errors["display_name"] = N_("Enter the name clients will see (at most 120 characters).")
    if len(headline) > 200:
        errors["headline"] = N_("At most 200 characters.")
    if len(bio) > 2000:
        errors["bio"] = N_("At most 2000 characters.")
    check_text(errors, "display_name", display_name)
    check_text(errors, "headline", headline)
    check_text(errors, "bio", bio, multiline=True)
    if errors:
        raise ValidationFailed(errors)
    expert.display_name, expert.headline, expert.bio = display_name, headline, bio
    await expert.save([Expert.display_name, Expert.headline, Expert.bio])
    return expert


async def expert_for_user(user: User) -> Expert | None:
    return await Expert.objects().where(Expert.user == user.id).first()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def token_create(*, user: User, name: str = "") -> str:
    """A new bearer token; only its hash is kept, so this is the one time it is seen."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    await ApiToken(
        user=user.id, token_hash=_token_hash(token), prefix=token[:12], name=name[:80]
    ).save()
    return token


async def token_user(token: str) -> User | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    row = (
        await ApiToken.select(ApiToken.id, ApiToken.user, ApiToken.last_used_at)
        .where((ApiToken.token_hash == _token_hash(token)) & ApiToken.revoked_at.is_null())
        .first()
    )
    if row is None:
        return None
    now = datetime.now(UTC)
    if row["last_used_at"] is None or now - row["last_used_at"] > TOKEN_TOUCH_EVERY:
        await ApiToken.update({ApiToken.last_used_at: now}).where(ApiToken.id == row["id"])
    return await user_by_id(row["user"])


async def token_revoke(token: str) -> bool:
    rows = (
        await ApiToken.update({ApiToken.revoked_at: datetime.now(UTC)})
        .where((ApiToken.token_hash == _token_hash(token)) & ApiToken.revoked_at.is_null())
        .returning(ApiToken.id)
    )
    return bool(rows)
