import os

from piccolo.conf.apps import AppConfig

from portal.accounts.tables import ApiToken, EmailChange, Expert, PasswordReset, Signup, User

APP_CONFIG = AppConfig(
    app_name="accounts",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[User, Expert, ApiToken, Signup, PasswordReset, EmailChange],
    migration_dependencies=[],
    commands=[],
)
