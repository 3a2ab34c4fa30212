"""Login throttling kept in Redis, so it holds across every web process.

Guessing must stay slow, and nobody may lock an account's owner out by failing on purpose.
Three counts of failures, each checked and updated in one Redis script (parallel guesses
cannot slip between a check and a count); an attempt is counted as a failure before the
password is checked, and a success takes it back. A refused attempt is not counted:
hammering does not lengthen the wait.

- Per (address, account): PAIR_FREE failures, then each attempt must wait UNIT_S·2^k after
  the previous failure (1 s, 2 s, 4 s… capped at PAIR_CAP_S). The owner who mistyped waits
  seconds; a guesser at one address gets a few tries an hour, then one per PAIR_CAP_S.
- Per account, for addresses that have never logged in to it: ACCOUNT_FREE failures from
  all of them together, then the same doubling, capped at ACCOUNT_CAP_S: many addresses
  guessing at once are slowed as one. An address where the owner logged in (within
  KNOWN_FOR_S) is exempt and its failures are not counted here. An attempt that carries a
  proof of the account's inbox (a one-time code sent by email, or a sign-up link) is not
  held by this count, only counted: the caller checks the proof (see login.py).
- Per address: ADDRESS_LIMIT failures an hour over every account (spraying one password
  over many emails). It does not hold an address where the account's owner logged in, so
  one person cannot block a whole office behind one address.

IPv6 addresses are counted by their /64 network (what one subscriber usually gets). Unknown
emails are counted like real ones: the answers never tell whether an account exists.

Sign-ups (each hashes a password) are counted per address, every one of them, before
anything is done: SIGNUP_ADDRESS_LIMIT an hour. How many emails one inbox gets is bounded
by the sign-up itself (see signup.py), never by refusing the sign-up.
"""

from __future__ import annotations

import hashlib
import ipaddress
from typing import NamedTuple

from redis.asyncio import Redis

from portal.errors import N_, DomainError

UNIT_S = 1.0  # the first wait of the doubling (tests set another)
PAIR_FREE = 5
PAIR_CAP_S = 15 * 60
ACCOUNT_FREE = 20
ACCOUNT_CAP_S = 15 * 60
ADDRESS_LIMIT = 50
ADDRESS_WINDOW_S = 3600
SIGNUP_ADDRESS_LIMIT = 10
SIGNUP_WINDOW_S = 3600
FAILURES_KEPT_S = 24 * 3600  # a count is forgotten a day after its last failure
KNOWN_FOR_S = 90 * 24 * 3600

# KEYS: pair, account, address, known. ARGV: unit, pair free and cap, account free and
# cap, address limit and window, failures kept, proven (1: the account count does not
# refuse). Returns {refused (0: counted, 1: by the pair or address, 2: by the account),
# milliseconds to wait (0: counted), milliseconds the account count holds new addresses}.
_ATTEMPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local unit = tonumber(ARGV[1])
local function wait(key, free, cap)
  local state = redis.call('HMGET', key, 'n', 't')
  local failures = tonumber(state[1] or '0')
  if failures < free then return 0 end
  return math.max(0, tonumber(state[2] or '0') + math.min(unit * 2 ^ (failures - free), cap) - now)
end
local function ms(seconds) return math.ceil(seconds * 1000) end
local known = redis.call('EXISTS', KEYS[4]) == 1
local seconds = wait(KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3]))
local held = 0
if not known then
  held = wait(KEYS[2], tonumber(ARGV[4]), tonumber(ARGV[5]))
  if tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[6]) then
    seconds = math.max(seconds, redis.call('TTL', KEYS[3]))
  end
end
if seconds > 0 then return {1, ms(seconds), ms(held)} end
if held > 0 and ARGV[9] ~= '1' then return {2, ms(held), ms(held)} end
local counted = {KEYS[1]}
if not known then counted[2] = KEYS[2] end
for _, key in ipairs(counted) do
  redis.call('HINCRBY', key, 'n', 1)
  redis.call('HSET', key, 't', string.format('%.6f', now))
  redis.call('EXPIRE', key, ARGV[8])
end
redis.call('SET', KEYS[3], 0, 'EX', ARGV[7], 'NX')
redis.call('INCR', KEYS[3])
return {0, 0, ms(held)}
"""

# KEYS: pair, account, address, known. ARGV: how long the address stays known.
# The account's count was only taken for an address not known yet.
_SUCCEEDED = """
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[4]) == 0 and tonumber(redis.call('HGET', KEYS[2], 'n') or '0') > 0 then
  redis.call('HINCRBY', KEYS[2], 'n', -1)
end
if tonumber(redis.call('GET', KEYS[3]) or '0') > 0 then redis.call('DECR', KEYS[3]) end
redis.call('SET', KEYS[4], 1, 'EX', ARGV[1])
return 0
"""


def _seconds(milliseconds: int) -> int:
    return -(-milliseconds // 1000)


class Attempt(NamedTuple):
    """What the throttle said of one attempt."""

    refused_by: str  # "": counted as a failure; "address": the pair or address count; "account"
    wait_ms: int  # how long to wait before trying again (0: counted)
    account_ms: int  # how long the account's count holds new addresses (0: it does not)

    @property
    def wait(self) -> int:
        """The wait in whole seconds (Retry-After)."""
        return _seconds(self.wait_ms)

    @property
    def account_wait(self) -> int:
        return _seconds(self.account_ms)


class Throttled(DomainError):
    code = "throttled"

    def __init__(self, retry_after: int, message: str = "") -> None:
        self.retry_after = retry_after
        super().__init__(message or N_("Too many failed attempts."))


def address_of(ip: str) -> str:
    """What an address is counted as: itself, or its /64 network for IPv6."""
    try:
        parsed = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def account_key(email: str) -> str:
    """How an account is named in Redis (its email's SHA-256)."""
    return hashlib.sha256(email.encode()).hexdigest()


class LoginThrottle:
    def __init__(
        self,
        redis: Redis,
        *,
        pair_free: int = PAIR_FREE,
        pair_cap_s: float = PAIR_CAP_S,
        account_free: int = ACCOUNT_FREE,
        account_cap_s: float = ACCOUNT_CAP_S,
        address_limit: int = ADDRESS_LIMIT,
        unit_s: float | None = None,
    ) -> None:
        self.redis = redis
        unit = UNIT_S if unit_s is None else unit_s
        self.limits = (unit, pair_free, pair_cap_s, account_free, account_cap_s, address_limit)

    @staticmethod
    def _keys(email: str, ip: str) -> list[str]:
        account, address = account_key(email), address_of(ip)
        prefix = "portal:login-attempts"
        return [
            f"{prefix}:pair:{account}:{address}",
            f"{prefix}:account:{account}",
            f"{prefix}:ip:{address}",
            f"{prefix}:known:{account}:{address}",
        ]

    async def attempt(self, *, email: str, ip: str, proven: bool = False) -> Attempt:
        """Count one attempt as a failure, or refuse it (not counted). `proven`: the attempt
        carries a proof of the inbox that the caller checks, so the account's count (which
        the owner cannot help) does not refuse it."""
        refused, wait_ms, account_ms = await self.redis.eval(  # type: ignore[misc]
            _ATTEMPT,
            4,
            *self._keys(email, ip),
            *self.limits,  # type: ignore[arg-type]  # redis-py encodes numbers too
            ADDRESS_WINDOW_S,  # type: ignore[arg-type]
            FAILURES_KEPT_S,  # type: ignore[arg-type]
            int(proven),  # type: ignore[arg-type]
        )
        by = ("", "address", "account")[int(refused)]
        return Attempt(refused_by=by, wait_ms=int(wait_ms), account_ms=int(account_ms))

    async def succeeded(self, *, email: str, ip: str) -> None:
        """The attempt was right: take it back, forget this address's failures on the
        account, and remember the address as one the owner uses."""
        await self.redis.eval(_SUCCEEDED, 4, *self._keys(email, ip), KNOWN_FOR_S)  # type: ignore[misc,arg-type]


class AddressThrottle:
    """At most SIGNUP_ADDRESS_LIMIT requests of one kind an hour from one client address
    (sign-ups, reset links: each costs an email or a password hash)."""

    kind = ""
    message = ""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def attempt(self, *, ip: str) -> None:
        """Count one request from this address; Throttled if it is over the limit."""
        key = f"portal:{self.kind}:ip:{address_of(ip)}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=SIGNUP_WINDOW_S, nx=True)
            pipe.incr(key)
            pipe.ttl(key)
            _, count, ttl = await pipe.execute()
        if count > SIGNUP_ADDRESS_LIMIT:
            raise Throttled(max(ttl, 1), self.message)


class SignupThrottle(AddressThrottle):
    kind = "signups"
    message = N_("Too many sign-ups from your address.")


class ResetThrottle(AddressThrottle):
    kind = "resets"
    message = N_("Too many password reset requests from your address.")
