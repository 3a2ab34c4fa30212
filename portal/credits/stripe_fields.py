"""Reading the fields of signed Stripe events without trusting their shapes.

A valid signature says who sent an event, not that its content is what Stripe documents:
every value is checked for its type and range before it reaches a query or the ledger.
What does not fit raises `Malformed`; the event stays stored and nothing is applied.
"""

from __future__ import annotations

import json
from typing import Any

MAX_ID = 2**31 - 1  # ids and amounts are 32-bit integers in the database
MAX_AMOUNT = 2**31 - 1
MAX_REF = 255  # the length of the columns that keep Stripe ids


class Malformed(ValueError):
    """A signed event whose content is not what Stripe sends: stored, logged, not applied."""


def shown(value: Any) -> str:
    """An untrusted value, short enough for a log line or a note."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def event_object(payload: str) -> dict[str, Any]:
    """The object a stored event's payload is about."""
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise Malformed("not JSON") from exc
    return data_object(event)


def data_object(event: Any) -> dict[str, Any]:
    """The object an event is about (`data.object`)."""
    data = event.get("data") if isinstance(event, dict) else None
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise Malformed("no data.object")
    return obj


def amount(obj: dict[str, Any], name: str) -> int:
    """A whole number of minor units."""
    value = obj.get(name)
    if type(value) is not int or not 0 <= value <= MAX_AMOUNT:
        raise Malformed(f"{name} is {shown(value)}")
    return value


def ref(obj: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    """A Stripe id (`ch_...`, `pi_...`, `dp_...`); None when absent and not required."""
    value = obj.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_REF:
        raise Malformed(f"{name} is {shown(value)}")
    return value


def currency(obj: dict[str, Any], name: str) -> str:
    """An ISO currency code, upper case as the portal writes them."""
    value = obj.get(name)
    if not isinstance(value, str) or len(value) != 3 or not value.isascii() or not value.isalpha():
        raise Malformed(f"{name} is {shown(value)}")
    return value.upper()


def purchase_id(value: Any) -> int | None:
    """A purchase id as the portal writes it (decimal digits), or None: not one of ours."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return None
    if len(value) > len(str(MAX_ID)) or not 0 < int(value) <= MAX_ID:
        return None
    return int(value)


REFS = {  # object -> the fields naming its charge and its PaymentIntent
    "charge": ("id", "payment_intent"),
    "dispute": ("charge", "payment_intent"),
    "payment_intent": ("latest_charge", "id"),
    "checkout.session": (None, "payment_intent"),
}


def payment_refs(event: Any) -> tuple[str | None, str | None]:
    """The charge and the PaymentIntent an event's object names (either may be None), so
    that events arriving in any order can be matched with the purchase they concern."""
    try:
        obj = data_object(event)
    except Malformed:
        return None, None
    kind = obj.get("object")
    names = REFS.get(kind, (None, None)) if isinstance(kind, str) else (None, None)
    found = (obj.get(name) if name else None for name in names)
    charge, intent = (v if isinstance(v, str) and 0 < len(v) <= MAX_REF else None for v in found)
    return charge, intent
