import os

from piccolo.conf.apps import AppConfig

from portal.questions.tables import Question

APP_CONFIG = AppConfig(
    app_name="questions",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[Question],
    migration_dependencies=[
        "portal.accounts.piccolo_app",
        "portal.credits.piccolo_app",
        "portal.booking.piccolo_app",
    ],
    commands=[],
)
