import os

from piccolo.conf.apps import AppConfig

from portal.charter.tables import CharterDraft, CharterVersion, CreditPack

APP_CONFIG = AppConfig(
    app_name="charter",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[CharterDraft, CharterVersion, CreditPack],
    migration_dependencies=["portal.accounts.piccolo_app"],
    commands=[],
)
