"""Checking a password under the login throttle: the login page, the API's token endpoint
and the password change all go through here."""

from __future__ import annotations

from redis.asyncio import Redis

from portal.accounts.services import (
    normalize_email,
    user_authenticate,
    user_change_password,
)
from portal.accounts.tables import User
from portal.accounts.throttle import LoginThrottle
from portal.errors import N_, DomainError, ValidationFailed


class Throttled(DomainError):
    code = "throttled"

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(N_("Too many failed attempts. Try again later."))


class LoginRefused(DomainError):
    code = "invalid_credentials"

    def __init__(self) -> None:
        super().__init__(N_("The email or the password is not correct."))


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
