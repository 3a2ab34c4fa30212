import os

from piccolo.conf.apps import AppConfig

from portal.booking.tables import Availability, Booking, DateOverride, ExternalCalendar

APP_CONFIG = AppConfig(
    app_name="booking",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[Availability, DateOverride, ExternalCalendar, Booking],
    migration_dependencies=[
        "portal.accounts.piccolo_app",
        "portal.charter.piccolo_app",
        "portal.credits.piccolo_app",
    ],
    commands=[],
)
