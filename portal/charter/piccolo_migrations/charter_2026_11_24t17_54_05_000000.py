from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-11-24T17:54:05:000000"
VERSION = "1.38.0"
DESCRIPTION = "charter constraints the ORM cannot say"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="charter", description=DESCRIPTION)

    async def constraints():
        """What the ORM cannot say: version numbers unique per expert, positive packs,
        and published versions that never change (what refers to a version keeps it from
        being deleted through its foreign key)."""
        engine = engine_finder()
        await engine.run_ddl(
            "CREATE UNIQUE INDEX charter_version_expert_number "
            "ON charter_version (expert, number)"
        )
        if engine.engine_type == "postgres":
            await engine.run_ddl(
                "ALTER TABLE charter_credit_pack ADD CONSTRAINT charter_credit_pack_positive "
                "CHECK (credits > 0 AND price_minor > 0)"
            )
            await engine.run_ddl(
                "CREATE FUNCTION charter_version_immutable() RETURNS trigger AS $$ "
                "BEGIN RAISE EXCEPTION 'published charter versions are immutable'; END; "
                "$$ LANGUAGE plpgsql"
            )
            await engine.run_ddl(
                "CREATE TRIGGER charter_version_immutable BEFORE UPDATE "
                "ON charter_version FOR EACH ROW EXECUTE FUNCTION charter_version_immutable()"
            )
        else:
            await engine.run_ddl(
                "CREATE TRIGGER charter_version_immutable BEFORE UPDATE ON charter_version "
                "BEGIN SELECT RAISE(ABORT, 'published charter versions are immutable'); END"
            )
            for event in ("INSERT", "UPDATE"):
                await engine.run_ddl(
                    f"CREATE TRIGGER charter_credit_pack_positive_{event.lower()} "
                    f"BEFORE {event} ON charter_credit_pack "
                    "WHEN NEW.credits <= 0 OR NEW.price_minor <= 0 BEGIN "
                    "SELECT RAISE(ABORT, 'credits and price must be positive'); END"
                )


    manager.add_raw(constraints)
    return manager
