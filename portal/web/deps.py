"""Names of the values the app injects into handlers (see create_app's dependencies)."""

from arq.connections import ArqRedis
from litestar.di import NamedDependency

from portal.settings import Settings

# One Redis client per app, created at start-up: sessions, throttling, and the arq queue
# (`await redis.enqueue_job("name", ..., _job_id=...)`).
RedisDep = NamedDependency[ArqRedis]
SettingsDep = NamedDependency[Settings]
