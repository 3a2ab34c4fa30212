"""Checking a password under the login throttle: the login page, the API's token endpoint,
the end of a sign-up and the password change all go through here."""

from __future__ import annotations

from redis.asyncio import Redis

from portal.accounts.passwords import verify_password
from portal.accounts.services import (
    normalize_email,
    user_authenticate,
    user_change_password,
)
from portal.accounts.signup import signup_confirm, signup_token_user
from portal.accounts.tables import User
from portal.accounts.throttle import LoginThrottle, Throttled
from portal.errors import N_, DomainError, ValidationFailed


class LoginRefused(DomainError):
    code = "invalid_credentials"

    def __init__(self, message: str = N_("The email or the password is not correct.")) -> None:
        super().__init__(message)


class LinkInvalid(DomainError):
    code = "link_invalid"

    def __init__(self) -> None:
        super().__init__(N_("This link is not valid any more. Sign up again to get a new one."))


async def login_attempt(*, redis: Redis, email: str, password: str, ip: str) -> User:
    """The user, or LoginRefused (same answer for an unknown email), or Throttled."""
    email = normalize_email(email)
    throttle = LoginThrottle(redis)
    if wait := await throttle.attempt(email=email, ip=ip):
        raise Throttled(wait)
    user = await user_authenticate(email=email, password=password)
    if user is None:
        raise LoginRefused()
    await throttle.succeeded(email=email, ip=ip)
    return user


async def signup_confirm_attempt(*, redis: Redis, token: str, password: str, ip: str) -> User:
    """The end of a sign-up: its emailed link and the password chosen, throttled like a
    login. The user, or LinkInvalid, or LoginRefused, or Throttled."""
    user = await signup_token_user(token)
    if user is None:
        raise LinkInvalid()
    throttle = LoginThrottle(redis)
    if wait := await throttle.attempt(email=user.email, ip=ip):
        raise Throttled(wait)
    if not await verify_password(user.password_hash, password):
        raise LoginRefused(N_("The password is not correct."))
    await throttle.succeeded(email=user.email, ip=ip)
    return await signup_confirm(user=user)


async def password_change_attempt(
    *, redis: Redis, user: User, current: str, new: str, confirm: str, ip: str
) -> User:
    """Guessing the current password from an open session is throttled like a login."""
    throttle = LoginThrottle(redis)
    if wait := await throttle.attempt(email=user.email, ip=ip):
        raise Throttled(wait)
    try:
        user = await user_change_password(user=user, current=current, new=new, confirm=confirm)
    except ValidationFailed as exc:
        if "current_password" not in exc.errors:
            await throttle.succeeded(email=user.email, ip=ip)
        raise
    await throttle.succeeded(email=user.email, ip=ip)
    return user
