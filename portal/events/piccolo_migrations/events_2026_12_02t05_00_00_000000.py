from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-12-02T05:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "the domain event log and its consumers' cursors"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="events", description=DESCRIPTION)

    async def tables():
        engine = engine_finder()
        postgres = engine.engine_type == "postgres"
        serial = "BIGSERIAL PRIMARY KEY" if postgres else "INTEGER PRIMARY KEY AUTOINCREMENT"
        now = "CURRENT_TIMESTAMP"
        await engine.run_ddl(
            f"CREATE TABLE events_event (id {serial}, kind VARCHAR(40) NOT NULL, "
            "key VARCHAR(200) NOT NULL UNIQUE, data TEXT NOT NULL DEFAULT '{}', "
            "txid BIGINT NOT NULL DEFAULT 0, "
            f"recorded_at TIMESTAMPTZ NOT NULL DEFAULT {now})"
        )
        await engine.run_ddl("CREATE INDEX events_event_order ON events_event (txid, id)")
        await engine.run_ddl(
            f"CREATE TABLE events_cursor (id {serial}, consumer VARCHAR(40) NOT NULL UNIQUE, "
            "txid BIGINT NOT NULL DEFAULT 0, event BIGINT NOT NULL DEFAULT 0, "
            f"events BIGINT NOT NULL DEFAULT 0, moved_at TIMESTAMPTZ NOT NULL DEFAULT {now})"
        )

    manager.add_raw(tables)
    return manager
