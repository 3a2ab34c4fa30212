from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-11-24T20:38:06:000000"
VERSION = "1.38.0"
DESCRIPTION = "no two active bookings of an expert overlap; constraints the ORM cannot say"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="booking", description=DESCRIPTION)

    async def constraints():
        engine = engine_finder()
        await engine.run_ddl(
            "CREATE UNIQUE INDEX booking_date_override_expert_day "
            "ON booking_date_override (expert, day)"
        )
        await engine.run_ddl(
            "CREATE INDEX booking_booking_expert_starts ON booking_booking (expert, starts_at)"
        )
        await engine.run_ddl(
            "CREATE INDEX booking_booking_status_ends ON booking_booking (status, ends_at)"
        )
        condition = (
            "duration IN (15, 30, 45) AND credits > 0 AND ends_at > starts_at "
            "AND blocked_until >= ends_at AND channel IN ('call', 'video')"
        )
        if engine.engine_type == "postgres":
            await engine.run_ddl(
                f"ALTER TABLE booking_booking ADD CONSTRAINT booking_booking_valid "
                f"CHECK ({condition})"
            )
            # The guarantee against double booking, whatever the application does.
            await engine.run_ddl("CREATE EXTENSION IF NOT EXISTS btree_gist")
            await engine.run_ddl(
                "ALTER TABLE booking_booking ADD CONSTRAINT booking_booking_no_overlap "
                "EXCLUDE USING gist (expert WITH =, "
                "tstzrange(starts_at, blocked_until, '[)') WITH &&) "
                "WHERE (status = 'booked')"
            )
            return
        new_row = (
            "NEW.duration IN (15, 30, 45) AND NEW.credits > 0 AND NEW.ends_at > NEW.starts_at "
            "AND NEW.blocked_until >= NEW.ends_at AND NEW.channel IN ('call', 'video')"
        )
        for event in ("INSERT", "UPDATE"):
            await engine.run_ddl(
                f"CREATE TRIGGER booking_booking_valid_{event.lower()} BEFORE {event} "
                f"ON booking_booking WHEN NOT ({new_row}) BEGIN "
                "SELECT RAISE(ABORT, 'booking_booking: invalid duration, credits, times or channel'); END"
            )

    manager.add_raw(constraints)
    return manager
