"""Checking a password under the login throttle: the login page, the API's token endpoint,
the end of a sign-up and the password change all go through here.

When failures from many addresses hold an account (see throttle.py), an attempt from an
address its owner has not used needs a one-time code emailed to the account (codes.py):
with a valid code and the right password the owner gets in at once; without one nothing
changes for anybody else. An emailed sign-up link is such a proof too.
"""

from __future__ import annotations

from redis.asyncio import Redis

from portal.accounts.codes import login_code_send, login_code_take, login_code_valid
from portal.accounts.reset import reset_forget
from portal.accounts.services import (
    normalize_email,
    user_authenticate,
    user_change_password,
)
from portal.accounts.signup import signup_confirm, signup_matching, signup_token_user
from portal.accounts.tables import User
from portal.accounts.throttle import Attempt, LoginThrottle, Throttled
from portal.errors import N_, DomainError, ValidationFailed


class LoginRefused(DomainError):
    code = "invalid_credentials"

    def __init__(self, message: str = N_("The email or the password is not correct.")) -> None:
        super().__init__(message)


class CodeRequired(DomainError):
    """The account is held for new addresses: a code was (or will be) emailed to it."""

    code = "code_required"

    def __init__(self, retry_after: int, *, invalid: bool = False) -> None:
        self.retry_after = retry_after
        super().__init__(
            N_(
                "This code is not valid. A code works once, for 15 minutes; when it has "
                "expired, a new one is emailed to the account."
            )
            if invalid
            else N_(
                "This account is protected after many failed attempts from other networks: "
                "a code has been emailed to its address. Enter it with your password."
            )
        )


class LinkInvalid(DomainError):
    code = "link_invalid"

    def __init__(self) -> None:
        super().__init__(N_("This link is not valid any more. Sign up again to get a new one."))


async def login_attempt(
    *, redis: Redis, email: str, password: str, ip: str, code: str = ""
) -> User:
    """The user, or LoginRefused (same answer for an unknown email), Throttled, or
    CodeRequired (same for an unknown email too)."""
    email = normalize_email(email)
    throttle = LoginThrottle(redis)
    attempt = await throttle.attempt(email=email, ip=ip, proven=bool(code))
    if attempt.refused_by == "address":
        raise Throttled(attempt.wait)
    if attempt.account_ms:
        await _needs_code(redis, email, code, attempt)
    user = await user_authenticate(email=email, password=password)
    if user is None:
        raise LoginRefused()
    if attempt.account_ms and not await login_code_take(redis=redis, email=email, code=code):
        raise CodeRequired(attempt.account_wait, invalid=True)  # used meanwhile
    await throttle.succeeded(email=email, ip=ip)
    await reset_forget(user.id)  # a reset link asked for meanwhile ends
    return user


async def _needs_code(redis: Redis, email: str, code: str, attempt: Attempt) -> None:
    """The account's count holds new addresses: only a valid code goes on. Otherwise a code
    is emailed (unless one was lately) and the attempt refused."""
    if attempt.refused_by != "account" and await login_code_valid(
        redis=redis, email=email, code=code
    ):
        return
    await login_code_send(redis=redis, email=email)
    raise CodeRequired(attempt.account_wait, invalid=bool(code))


async def signup_confirm_attempt(
    *, redis: Redis, token: str, password: str, ip: str
) -> tuple[User, str]:
    """The end of a sign-up: an emailed link (which proves the inbox) and the password
    chosen, throttled like a login. The account and where to go, or LinkInvalid,
    LoginRefused or Throttled."""
    held = await signup_token_user(token)
    if held is None:
        raise LinkInvalid()
    throttle = LoginThrottle(redis)
    attempt = await throttle.attempt(email=held.email, ip=ip, proven=True)
    if attempt.refused_by:
        raise Throttled(attempt.wait)
    signup = await signup_matching(user=held, password=password)
    if signup is None:
        raise LoginRefused(N_("The password is not correct."))
    user = await signup_confirm(user=held, signup=signup)
    if user is None:
        raise LinkInvalid()
    await throttle.succeeded(email=user.email, ip=ip)
    return user, signup.next_path


async def password_change_attempt(
    *, redis: Redis, user: User, current: str, new: str, confirm: str, ip: str
) -> User:
    """Guessing the current password from an open session is throttled like a login."""
    throttle = LoginThrottle(redis)
    attempt = await throttle.attempt(email=user.email, ip=ip)
    if attempt.refused_by:
        raise Throttled(attempt.wait)
    try:
        user = await user_change_password(user=user, current=current, new=new, confirm=confirm)
    except ValidationFailed as exc:
        if "current_password" not in exc.errors:
            await throttle.succeeded(email=user.email, ip=ip)
        raise
    await throttle.succeeded(email=user.email, ip=ip)
    return user
