import os

from piccolo.conf.apps import AppConfig

from portal.notify.tables import Notification

APP_CONFIG = AppConfig(
    app_name="notify",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[Notification],
    migration_dependencies=["portal.accounts.piccolo_app"],
    commands=[],
)
