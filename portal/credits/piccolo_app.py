import os

from piccolo.conf.apps import AppConfig

from portal.credits.tables import (
    Dispute,
    Entry,
    Hold,
    HoldPart,
    Lot,
    Purchase,
    StripeEvent,
    Wallet,
)

APP_CONFIG = AppConfig(
    app_name="credits",
    migrations_folder_path=os.path.join(os.path.dirname(__file__), "piccolo_migrations"),
    table_classes=[Wallet, Lot, Hold, HoldPart, Entry, Purchase, StripeEvent, Dispute],
    migration_dependencies=["portal.accounts.piccolo_app", "portal.charter.piccolo_app"],
    commands=[],
)
