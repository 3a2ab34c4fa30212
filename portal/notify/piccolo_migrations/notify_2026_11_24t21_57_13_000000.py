from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-11-24T21:57:13:000000"
VERSION = "1.38.0"
DESCRIPTION = "notifications: the sender's index"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="notify", description=DESCRIPTION)

    async def index():
        await engine_finder().run_ddl(
            "CREATE INDEX notify_notification_status_next "
            "ON notify_notification (status, next_attempt_at)"
        )

    manager.add_raw(index)
    return manager
