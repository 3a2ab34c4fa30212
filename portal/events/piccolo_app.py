import os

from piccolo.conf.apps import AppConfig

from portal.events.tables import Cursor, Event, Failure

APP_CONFIG = AppConfig(
    app_name="events",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[Event, Cursor, Failure],
    migration_dependencies=[],
    commands=[],
)
