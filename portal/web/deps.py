"""Names of the values the app injects into handlers (see create_app's dependencies)."""

from arq.connections import ArqRedis
from litestar.di import NamedDependency

from portal.settings import Settings

# One Redis client per app, created at start-up: sessions, throttling, and the arq queue
# (`await trigger(redis, "name", ..., job_id=...)`, see portal.web.jobs).
RedisDep = NamedDependency[ArqRedis]
SettingsDep = NamedDependency[Settings]
