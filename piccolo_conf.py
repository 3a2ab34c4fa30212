"""Piccolo configuration: the engine comes from DATABASE_URL (see portal/settings.py)."""

from piccolo.conf.apps import AppRegistry

from portal.db import APPS, engine_from_url
from portal.settings import get_settings

DB = engine_from_url(get_settings().database_url)

APP_REGISTRY = AppRegistry(apps=APPS)
