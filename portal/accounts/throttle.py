"""Login throttling kept in Redis, so it holds across every web process.

Guessing must stay slow, and nobody may lock an account's owner out by failing on purpose.
Three counts of failures, each checked and updated in one Redis script (parallel guesses
cannot slip between a check and a count); an attempt is counted as a failure before the
password is checked, and a success takes it back.

- Per (address, account): PAIR_FREE failures, then each attempt must wait 2^k seconds after
  the previous failure (1 s, 2 s, 4 s… capped at PAIR_CAP_S). The owner who mistyped waits
  seconds; a guesser at one address gets a few tries an hour, then one per PAIR_CAP_S. A
  refused attempt is not counted: hammering does not lengthen the wait.
- Per account, for addresses that have never logged in to it: ACCOUNT_FREE failures from
  all of them together, then the same doubling, capped at ACCOUNT_CAP_S: many addresses
  guessing at once are slowed as one. An address where the owner logged in (within
  KNOWN_FOR_S) is exempt, so such an attack never locks the owner out either: at worst, from
  a new address, the owner waits ACCOUNT_CAP_S.
- Per address: ADDRESS_LIMIT failures an hour over every account (spraying one password
  over many emails). Only failures count, and one person on one account cannot reach it
  (the doubling keeps them under twenty an hour): an office behind one address is not
  blocked by one of its people.

IPv6 addresses are counted by their /64 network (what one subscriber usually gets). Unknown
emails are counted like real ones: the answers never tell whether an account exists.

Sign-ups (each hashes a password and may send an email) are counted too, every one of them,
before anything is done: SIGNUP_ADDRESS_LIMIT an hour per address, and SIGNUP_EMAIL_LIMIT
an hour per email asked for (nobody's inbox is flooded from many addresses).
"""

from __future__ import annotations

import hashlib
import ipaddress

from redis.asyncio import Redis

from portal.errors import N_, DomainError

PAIR_FREE = 5
PAIR_CAP_S = 15 * 60
ACCOUNT_FREE = 20
ACCOUNT_CAP_S = 15 * 60
ADDRESS_LIMIT = 50
ADDRESS_WINDOW_S = 3600
SIGNUP_ADDRESS_LIMIT = 10
SIGNUP_EMAIL_LIMIT = 3
SIGNUP_WINDOW_S = 3600
FAILURES_KEPT_S = 24 * 3600  # a count is forgotten a day after its last failure
KNOWN_FOR_S = 90 * 24 * 3600

# KEYS: pair, account, address, known. ARGV: pair free and cap, account free and cap,
# address limit and window, failures kept. Returns the seconds to wait, or 0 (counted).
_ATTEMPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local function wait(key, free, cap)
  local state = redis.call('HMGET', key, 'n', 't')
  local failures = tonumber(state[1] or '0')
  if failures < free then return 0 end
  return tonumber(state[2] or '0') + math.min(2 ^ (failures - free), cap) - now
end
local seconds = wait(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
if redis.call('EXISTS', KEYS[4]) == 0 then
  seconds = math.max(seconds, wait(KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4])))
end
if tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[5]) then
  seconds = math.max(seconds, redis.call('TTL', KEYS[3]))
end
if seconds > 0 then return math.ceil(seconds) end
for i = 1, 2 do
  redis.call('HINCRBY', KEYS[i], 'n', 1)
  redis.call('HSET', KEYS[i], 't', string.format('%.6f', now))
  redis.call('EXPIRE', KEYS[i], ARGV[7])
end
redis.call('SET', KEYS[3], 0, 'EX', ARGV[6], 'NX')
redis.call('INCR', KEYS[3])
return 0
"""

# KEYS: pair, account, address, known. ARGV: how long the address stays known.
_SUCCEEDED = """
redis.call('DEL', KEYS[1])
if tonumber(redis.call('HGET', KEYS[2], 'n') or '0') > 0 then
  redis.call('HINCRBY', KEYS[2], 'n', -1)
end
if tonumber(redis.call('GET', KEYS[3]) or '0') > 0 then redis.call('DECR', KEYS[3]) end
redis.call('SET', KEYS[4], 1, 'EX', ARGV[1])
return 0
"""


class Throttled(DomainError):
    code = "throttled"

    def __init__(self, retry_after: int, message: str = "") -> None:
        self.retry_after = retry_after
        super().__init__(message or N_("Too many failed attempts. Try again later."))


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


def _account(email: str) -> str:
    return hashlib.sha256(email.encode()).hexdigest()


class LoginThrottle:
    def __init__(
        self,
        redis: Redis,
        *,
        pair_free: int = PAIR_FREE,
        pair_cap_s: int = PAIR_CAP_S,
        account_free: int = ACCOUNT_FREE,
        account_cap_s: int = ACCOUNT_CAP_S,
        address_limit: int = ADDRESS_LIMIT,
    ) -> None:
        self.redis = redis
        self.limits = (pair_free, pair_cap_s, account_free, account_cap_s, address_limit)

    @staticmethod
    def _keys(email: str, ip: str) -> list[str]:
        account, address = _account(email), address_of(ip)
        prefix = "portal:login-attempts"
        return [
            f"{prefix}:pair:{account}:{address}",
            f"{prefix}:account:{account}",
            f"{prefix}:ip:{address}",
            f"{prefix}:known:{account}:{address}",
        ]

    async def attempt(self, *, email: str, ip: str) -> int | None:
        """Count one attempt as a failure; or, refused, the seconds to wait (not counted)."""
        wait = await self.redis.eval(  # type: ignore[misc]
            _ATTEMPT,
            4,
            *self._keys(email, ip),
            *self.limits,
            ADDRESS_WINDOW_S,
            FAILURES_KEPT_S,
        )
        return int(wait) or None

    async def succeeded(self, *, email: str, ip: str) -> None:
        """The attempt was right: take it back, forget this address's failures on the
        account, and remember the address as one the owner uses."""
        await self.redis.eval(_SUCCEEDED, 4, *self._keys(email, ip), KNOWN_FOR_S)  # type: ignore[misc]


class SignupThrottle:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def attempt(self, *, email: str, ip: str) -> None:
        """Count one sign-up; Throttled if it is over a limit."""
        prefix = "portal:signups"
        limits = {
            f"{prefix}:ip:{address_of(ip)}": SIGNUP_ADDRESS_LIMIT,
            f"{prefix}:email:{_account(email)}": SIGNUP_EMAIL_LIMIT,
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in limits:
                pipe.set(key, 0, ex=SIGNUP_WINDOW_S, nx=True)
                pipe.incr(key)
                pipe.ttl(key)
            results = await pipe.execute()
        over = [
            max(ttl, 1)
            for (count, ttl), limit in zip(
                zip(results[1::3], results[2::3], strict=True), limits.values(), strict=True
            )
            if count > limit
        ]
        if over:
            raise Throttled(max(over), N_("Too many sign-ups from your address. Try again later."))
