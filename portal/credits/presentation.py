"""Ledger entries in plain words, for the client's history, its CSV export and the API."""

from __future__ import annotations

from portal import i18n
from portal.credits.tables import EntryKind
from portal.errors import N_

_CAUSES = {
    "purchase": N_("Purchase #%(id)s"),
    "booking": N_("Booking #%(id)s"),
    "question": N_("Question #%(id)s"),
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
