"""Login throttling kept in Redis, so it holds across every web process.

Failures are counted per account and per client address in fixed windows; once either
count reaches the limit, attempts are refused until the window ends.
"""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis

LIMIT = 10
WINDOW_S = 15 * 60


class LoginThrottle:
    def __init__(self, redis: Redis, *, limit: int = LIMIT, window_s: int = WINDOW_S) -> None:
        self.redis = redis
        self.limit = limit
        self.window_s = window_s

    @staticmethod
    def _keys(email: str, ip: str) -> tuple[str, str]:
        account = hashlib.sha256(email.encode()).hexdigest()
        return f"portal:login-failures:account:{account}", f"portal:login-failures:ip:{ip}"

    async def retry_after(self, *, email: str, ip: str) -> int | None:
        """Seconds to wait when blocked, else None."""
        keys = self._keys(email, ip)
        counts = await self.redis.mget(keys)
        blocked = [
            k for k, n in zip(keys, counts, strict=True) if n is not None and int(n) >= self.limit
        ]
        if not blocked:
            return None
        ttls = [await self.redis.ttl(k) for k in blocked]
        return max(max(ttls), 1)

    async def failed(self, *, email: str, ip: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in self._keys(email, ip):
                pipe.set(key, 0, ex=self.window_s, nx=True)
                pipe.incr(key)
            await pipe.execute()

    async def succeeded(self, *, email: str, ip: str) -> None:
        await self.redis.delete(self._keys(email, ip)[0])
