from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-11-24T18:30:22:000000"
VERSION = "1.38.0"
DESCRIPTION = "ledger constraints the ORM cannot say"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="credits", description=DESCRIPTION)

    async def constraints():
        """One wallet per (client, expert); balances and lots never negative; positive
        amounts where an amount is a quantity."""
        engine = engine_finder()
        await engine.run_ddl(
            "CREATE UNIQUE INDEX credits_wallet_client_expert ON credits_wallet (client, expert)"
        )
        checks = {
            "credits_wallet": "available >= 0 AND held >= 0",
            "credits_lot": "credits > 0 AND remaining >= 0 AND remaining <= credits",
            "credits_hold": "amount > 0 AND captured >= 0 AND captured <= amount",
            "credits_hold_part": "amount > 0",
            "credits_entry": "amount <> 0 OR held_change <> 0",
        }
        new_row = {  # the same conditions on the row being written, for SQLite triggers
            "credits_wallet": "NEW.available >= 0 AND NEW.held >= 0",
            "credits_lot": (
                "NEW.credits > 0 AND NEW.remaining >= 0 AND NEW.remaining <= NEW.credits"
            ),
            "credits_hold": (
                "NEW.amount > 0 AND NEW.captured >= 0 AND NEW.captured <= NEW.amount"
            ),
            "credits_hold_part": "NEW.amount > 0",
            "credits_entry": "NEW.amount <> 0 OR NEW.held_change <> 0",
        }
        for table, condition in checks.items():
            if engine.engine_type == "postgres":
                await engine.run_ddl(
                    f"ALTER TABLE {table} ADD CONSTRAINT {table}_valid CHECK ({condition})"
                )
                continue
            for event in ("INSERT", "UPDATE"):
                await engine.run_ddl(
                    f"CREATE TRIGGER {table}_valid_{event.lower()} BEFORE {event} ON {table} "
                    f"WHEN NOT ({new_row[table]}) BEGIN "
                    f"SELECT RAISE(ABORT, '{table}: {condition}'); END"
                )

    manager.add_raw(constraints)
    return manager
