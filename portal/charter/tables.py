from piccolo.columns import Boolean, ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from portal.accounts.tables import Expert


class CharterDraft(Table, tablename="charter_draft"):
    """The rules an expert is editing; one per expert, never shown to clients."""

    id: Serial  # the primary key Piccolo adds, declared for type checkers
    expert = ForeignKey(Expert, null=False, unique=True, on_delete=OnDelete.cascade)
    rules = Text(null=False)  # JSON of portal.charter.rules.Rules
    updated_at = Timestamptz(default=TimestamptzNow(), null=False)


class CharterVersion(Table, tablename="charter_version"):
    """A published charter. Immutable: the database refuses any update (a trigger)."""

    id: Serial
    expert = ForeignKey(Expert, null=False, on_delete=OnDelete.restrict, index=True)
    number = Integer(null=False)  # 1, 2, ... per expert; unique with expert (migration)
    rules = Text(null=False)
    published_at = Timestamptz(default=TimestamptzNow(), null=False)


class CreditPack(Table, tablename="charter_credit_pack"):
    """Credits sold together at one price. Archived packs are no longer sold; credits
    already bought are untouched (purchases keep their own copy of what was paid)."""

    id: Serial
    expert = ForeignKey(Expert, null=False, on_delete=OnDelete.cascade, index=True)
    name = Varchar(length=80, null=False)
    credits = Integer(null=False)
    price_minor = Integer(null=False)  # cents
    currency = Varchar(length=3, default="EUR", null=False)
    active = Boolean(default=True, null=False)
    created_at = Timestamptz(default=TimestamptzNow(), null=False)
