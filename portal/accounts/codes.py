"""One-time login codes, emailed when failures from many addresses hold an account.

The owner, on a network the account has never been used from, is then sent a code: with
it and the password, they get in at once (see login.py). A code is CODE_LENGTH characters
of an alphabet without look-alikes, kept in Redis only as an HMAC (under SECRET_KEY) bound
to the account, for CODE_VALID_S, and works once. At most one is emailed per account every
CODE_VALID_S, and only to an account that exists (the visitor is told the same either way).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from redis.asyncio import Redis

from portal.accounts.services import user_by_email
from portal.accounts.throttle import account_key
from portal.db import write_transaction
from portal.events.log import record
from portal.settings import get_settings

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L
CODE_LENGTH = 8
CODE_VALID_S = 15 * 60
_PREFIX = "portal:login-code"

# KEYS: the code's key. ARGV: the digest expected. 1 if it was there (now gone), else 0.
_TAKE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _digest(email: str, code: str) -> str:
    message = f"login-code:{account_key(email)}:{code}".encode()
    return hmac.new(_secret(), message, hashlib.sha256).hexdigest()


def _secret() -> bytes:
    return get_settings().secret_key.encode()


def _key(email: str) -> str:
    return f"{_PREFIX}:{account_key(email)}"


def normalize_code(raw: str) -> str:
    """As typed: any case, with spaces or dashes."""
    return "".join(c for c in raw.upper() if c not in " -\t")[:32]


async def login_code_send(*, redis: Redis, email: str) -> None:
    """Email a new code to the account, unless one was sent less than CODE_VALID_S ago or
    there is no such account."""
    account = account_key(email)
    if not await redis.set(f"{_PREFIX}-sent:{account}", 1, ex=CODE_VALID_S, nx=True):
        return
    user = await user_by_email(email)
    if user is None or not (user.is_active and user.email_confirmed):
        return
    nonce = secrets.token_hex(16)
    await redis.set(_key(email), _digest(email, code_of(email, nonce)), ex=CODE_VALID_S)
    async with write_transaction():  # the email is written from the event, by the worker
        await record(
            "account.login_code",
            f"login-code:{user.id}:{nonce}",
            user=user.id,
            nonce=nonce,
            minutes=CODE_VALID_S // 60,
        )


def code_of(email: str, nonce: str) -> str:
    """The code for `nonce`: only who holds SECRET_KEY can tell it from the nonce, which is
    all the event log keeps."""
    message = f"login-code-nonce:{account_key(email)}:{nonce}".encode()
    number = int.from_bytes(hmac.new(_secret(), message, hashlib.sha256).digest())
    letters = []
    for _ in range(CODE_LENGTH):
        number, index = divmod(number, len(CODE_ALPHABET))
        letters.append(CODE_ALPHABET[index])
    return "".join(letters)


async def login_code_valid(*, redis: Redis, email: str, code: str) -> bool:
    stored = await redis.get(_key(email))
    if not code or stored is None:
        return False
    expected = stored.decode() if isinstance(stored, bytes) else str(stored)
    return hmac.compare_digest(expected, _digest(email, normalize_code(code)))


async def login_code_take(*, redis: Redis, email: str, code: str) -> bool:
    """Use the code up; False if it was not (or no longer) the account's."""
    taken = await redis.eval(_TAKE, 1, _key(email), _digest(email, normalize_code(code)))  # type: ignore[misc]
    return bool(taken)
