"""Names of the values the app injects into handlers (see create_app's dependencies)."""

from litestar.di import NamedDependency
from redis.asyncio import Redis

from portal.settings import Settings

RedisDep = NamedDependency[Redis]
SettingsDep = NamedDependency[Settings]
