from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-12-02T05:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "events a consumer could not act on, to try again"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="events", description=DESCRIPTION)

    async def tables():
        engine = engine_finder()
        postgres = engine.engine_type == "postgres"
        serial = "BIGSERIAL PRIMARY KEY" if postgres else "INTEGER PRIMARY KEY AUTOINCREMENT"
        await engine.run_ddl(
            f"CREATE TABLE events_failure (id {serial}, consumer VARCHAR(40) NOT NULL, "
            "event BIGINT NOT NULL, error VARCHAR(300) NOT NULL DEFAULT '', "
            "attempts INTEGER NOT NULL DEFAULT 1, "
            "failed_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP, "
            "UNIQUE (consumer, event))"
        )

    manager.add_raw(tables)
    return manager
