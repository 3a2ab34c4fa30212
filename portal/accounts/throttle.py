"""Login throttling kept in Redis, so it holds across every web process.

Each attempt is counted *before* the password is checked, per account and per client
address, in fixed windows: concurrent guesses cannot slip through between a check and a
count. A success takes its attempt back (and clears the account's count), so only failures
add up: 10 per account, 30 per address (an office behind one address has several people)
in 15 minutes.
"""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis

ACCOUNT_LIMIT = 10
ADDRESS_LIMIT = 30
WINDOW_S = 15 * 60


class LoginThrottle:
    def __init__(
        self,
        redis: Redis,
        *,
        account_limit: int = ACCOUNT_LIMIT,
        address_limit: int = ADDRESS_LIMIT,
        window_s: int = WINDOW_S,
    ) -> None:
        self.redis = redis
        self.limits = (account_limit, address_limit)
        self.window_s = window_s

    @staticmethod
    def _keys(email: str, ip: str) -> tuple[str, str]:
        account = hashlib.sha256(email.encode()).hexdigest()
        return f"portal:login-attempts:account:{account}", f"portal:login-attempts:ip:{ip}"

    async def attempt(self, *, email: str, ip: str) -> int | None:
        """Count one attempt; the seconds to wait if it is over a limit, else None."""
        keys = self._keys(email, ip)
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in keys:
                pipe.set(key, 0, ex=self.window_s, nx=True)
                pipe.incr(key)
            for key in keys:
                pipe.ttl(key)
            results = await pipe.execute()
        counts, ttls = (results[1], results[3]), results[4:]
        over = [
            ttl
            for count, limit, ttl in zip(counts, self.limits, ttls, strict=True)
            if count > limit
        ]
        return max(max(over), 1) if over else None

    async def succeeded(self, *, email: str, ip: str) -> None:
        account, address = self._keys(email, ip)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(account)
            pipe.decr(address)
            await pipe.execute()
