from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-11-24T21:28:35:000000"
VERSION = "1.38.0"
DESCRIPTION = "questions: amounts never negative; indexes for the inbox and the sweeps"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="questions", description=DESCRIPTION)

    async def constraints():
        engine = engine_finder()
        for name, columns in {
            "questions_question_status_due": "status, due_at",
            "questions_question_status_expires": "status, expires_at",
            "questions_question_expert_status": "expert, status",
        }.items():
            await engine.run_ddl(f"CREATE INDEX {name} ON questions_question ({columns})")
        condition = "price >= 0 AND premium >= 0 AND captured >= 0 AND captured <= price + premium"
        if engine.engine_type == "postgres":
            await engine.run_ddl(
                f"ALTER TABLE questions_question ADD CONSTRAINT questions_question_valid "
                f"CHECK ({condition})"
            )
            return
        new_row = (
            "NEW.price >= 0 AND NEW.premium >= 0 AND NEW.captured >= 0 "
            "AND NEW.captured <= NEW.price + NEW.premium"
        )
        for event in ("INSERT", "UPDATE"):
            await engine.run_ddl(
                f"CREATE TRIGGER questions_question_valid_{event.lower()} BEFORE {event} "
                f"ON questions_question WHEN NOT ({new_row}) BEGIN "
                "SELECT RAISE(ABORT, 'questions_question: negative or excessive credits'); END"
            )

    manager.add_raw(constraints)
    return manager
