from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Text
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-02T00:26:48:470003"
VERSION = "1.38.0"
DESCRIPTION = "payments that do not match their purchase"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="credits", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="Purchase",
        tablename="credits_purchase",
        column_name="mismatch",
        db_column_name="mismatch",
        column_class_name="Text",
        column_class=Text,
        params={
            "default": None,
            "null": True,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    return manager
