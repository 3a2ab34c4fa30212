"""The monthly usage statement of a wallet: what the month began and ended with, each
exchange paid (date, what, charter version, credits) and every other movement.

A month is the viewer's calendar month, in their time zone. The statement is computed from
the ledger alone, so it agrees with the history and the CSV line by line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from piccolo.query.functions.aggregate import Sum
from piccolo.table import Table

from portal.credits.services import ENTRY_COLUMNS
from portal.credits.tables import Entry, EntryKind, Purchase
from portal.errors import N_, ValidationFailed
from portal.validation import whole_number

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        match = _MONTH.match(text)
        if match is None or not 1 <= int(match[2]) <= 12 or not 2000 <= int(match[1]) <= 2199:
            raise ValidationFailed(
                {"month": N_("A month written as YYYY-MM, from 2000-01 to 2199-12.")}
            )
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def of(cls, moment: datetime, tz: str) -> Month:
        local = moment.astimezone(ZoneInfo(tz))
        return cls(local.year, local.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def start(self, tz: str) -> datetime:
        """Its first instant in `tz`, in UTC."""
        return datetime(self.year, self.month, 1, tzinfo=ZoneInfo(tz)).astimezone(UTC)


@dataclass(slots=True)
class Statement:
    month: Month
    opening_available: int
    opening_held: int
    closing_available: int = 0
    closing_held: int = 0
    exchanges: list[dict[str, Any]] = field(default_factory=list)  # captures: credits used
    movements: list[dict[str, Any]] = field(default_factory=list)  # everything else
    totals: dict[str, int] = field(default_factory=dict)  # kind -> credits moved


async def _sums(wallet_id: int, before: datetime) -> tuple[int, int]:
    row = (
        await Entry.select(
            Sum(Entry.amount, alias="available"), Sum(Entry.held_change, alias="held")
        )
        .where((Entry.wallet == wallet_id) & (Entry.created_at < before))
        .first()
    )
    assert row is not None
    return int(row["available"] or 0), int(row["held"] or 0)


# Where the charter version of a cause is recorded, by the kind of reference: "purchase:12"
# -> Purchase 12's. The ledger knows nothing of exchanges: callers add their tables.
VersionSources = dict[str, type[Table]]


async def _versions(references: list[str], sources: VersionSources) -> dict[str, int]:
    """reference -> the charter version its cause froze, for the causes that record one."""
    wanted: dict[str, list[int]] = {}
    for reference in references:
        kind, _sep, ident = reference.partition(":")
        if kind in sources and (number := whole_number(ident)) is not None:
            wanted.setdefault(kind, []).append(number)
    found = {}
    for kind, ids in wanted.items():
        table = sources[kind]
        rows = await table.select(table._meta.primary_key, table.charter_version).where(  # type: ignore[attr-defined]
            table._meta.primary_key.is_in(sorted(set(ids)))
        )
        for row in rows:
            found[f"{kind}:{row['id']}"] = row["charter_version"]
    return found


async def statement_of(
    *, wallet_id: int, month: Month, tz: str, sources: VersionSources | None = None
) -> Statement:
    start, end = month.start(tz), month.next().start(tz)
    available, held = await _sums(wallet_id, start)
    statement = Statement(month=month, opening_available=available, opening_held=held)
    rows = (
        await Entry.select(*ENTRY_COLUMNS)
        .where((Entry.wallet == wallet_id) & (Entry.created_at >= start) & (Entry.created_at < end))
        .order_by(Entry.id)
    )
    versions = await _versions(
        [row["reference"] for row in rows], {"purchase": Purchase, **(sources or {})}
    )
    for row in rows:
        available += row["amount"]
        held += row["held_change"]
        row["charter_version"] = versions.get(row["reference"])
        row["available_after"], row["held_after"] = available, held
        moved = -row["held_change"] if row["kind"] == EntryKind.capture.value else row["amount"]
        statement.totals[row["kind"]] = statement.totals.get(row["kind"], 0) + moved
        if row["kind"] == EntryKind.capture.value:
            statement.exchanges.append(row)
        elif row["kind"] not in (EntryKind.hold.value, EntryKind.release.value):
            statement.movements.append(row)  # holds and releases are not usage
    statement.closing_available, statement.closing_held = available, held
    return statement


async def months_with_entries(*, wallet_id: int, tz: str) -> list[Month]:
    """The months (in `tz`) from the wallet's first entry to now, newest first."""
    first = (
        await Entry.select(Entry.created_at)
        .where(Entry.wallet == wallet_id)
        .order_by(Entry.id)
        .first()
    )
    now = Month.of(datetime.now(UTC), tz)
    month = Month.of(first["created_at"], tz) if first else now
    months = []
    while month <= now:
        months.append(month)
        month = month.next()
    return months[::-1]
