"""Ledger entries in plain words, for the client's history, its CSV export and the API."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from portal import i18n
from portal.credits.tables import EntryKind
from portal.errors import N_

_CAUSES = {
    "purchase": N_("Purchase #%(id)s"),
    "booking": N_("Booking #%(id)s"),
    "question": N_("Question #%(id)s"),
    "contest": N_("No-show of booking #%(id)s contested: credits given back"),
}


def cause(reference: str) -> str:
    """What caused an entry: "booking:12" -> "Booking #12"."""
    kind, _sep, ident = reference.partition(":")
    if kind == "adjust":
        return i18n.gettext("Adjustment")
    template = _CAUSES.get(kind)
    return i18n.gettext(template) % {"id": ident} if template else reference


def what(kind: str, reference: str, memo: str) -> str:
    """One line for one entry, in the viewer's language."""
    verbs = {
        EntryKind.grant.value: i18n.gettext("Credits added"),
        EntryKind.hold.value: i18n.gettext("Credits held"),
        EntryKind.capture.value: i18n.gettext("Credits debited"),
        EntryKind.release.value: i18n.gettext("Credits released"),
        EntryKind.expire.value: i18n.gettext("Credits expired"),
        EntryKind.refund.value: i18n.gettext("Credits taken back (refund)"),
        EntryKind.adjust.value: i18n.gettext("Adjustment by the expert"),
    }
    line = verbs.get(kind, kind)
    if not reference.startswith("adjust:"):  # an adjustment's cause is its reason
        line = f"{line} — {cause(reference)}"
    return i18n.gettext("%(what)s: %(why)s") % {"what": line, "why": memo} if memo else line


def change(kind: str, amount: int, held_change: int) -> int:
    """The credits an entry moved, signed as the client sees them: a capture spends held
    credits (its amount on the available balance is zero)."""
    return held_change if kind == EntryKind.capture.value else amount


PURCHASE_STATUS = {
    "pending": N_("awaiting payment"),
    "processing": N_("payment being confirmed"),
    "paid": N_("paid"),
    "failed": N_("payment failed"),
    "expired": N_("abandoned"),
}


def entries_in_words(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ledger rows (see services.entries_of) with what each says and the change it made."""
    return [
        {
            **row,
            "what": what(row["kind"], row["reference"], row["memo"]),
            "change": change(row["kind"], row["amount"], row["held_change"]),
        }
        for row in rows
    ]


def history_csv(rows: list[dict[str, Any]]) -> bytes:
    """The history as a spreadsheet opens it in the viewer's language: headers in it, times
    in the viewer's zone, `;` between fields in French (its spreadsheets read `,` as the
    decimal mark) and `,` in English, UTF-8 with a BOM (for accents in Excel)."""
    zone = i18n.current_timezone()
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";" if i18n.current_locale() == "fr" else ",")
    writer.writerow(
        [
            i18n.gettext("Date (%(zone)s)") % {"zone": zone},
            i18n.gettext("What"),
            i18n.gettext("Credits"),
            i18n.gettext("Available after"),
            i18n.gettext("Held after"),
            i18n.gettext("Reference"),
        ]
    )
    for row in entries_in_words(rows):
        moment: datetime = row["created_at"]
        writer.writerow(
            [
                moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M"),
                row["what"],
                row["change"],
                row["available_after"],
                row["held_after"],
                row["reference"],
            ]
        )
    return out.getvalue().encode("utf-8-sig")
