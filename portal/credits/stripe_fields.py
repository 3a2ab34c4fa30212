"""Reading the fields of signed Stripe events without trusting their shapes.

A valid signature says who sent an event, not that its content is what Stripe documents:
every value is checked for its type and range before it reaches a query or the ledger.
What does not fit raises `Malformed`; the event stays stored and nothing is applied.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal, TypeGuard, overload

from portal.validation import whole_number

MAX_AMOUNT = 2**31 - 1
MAX_REF = 255  # the length of the columns that keep Stripe ids
# Stripe ids (`evt_1N...`, `ch_3M...`, `cs_test_a1...`) and event types
# (`charge.dispute.created`): short, printable, never a NUL that PostgreSQL refuses.
STRIPE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,255}")
EVENT_TYPE = re.compile(r"[a-z0-9_.]{1,80}")
STATUS = re.compile(r"[a-z_]{1,32}")


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


def of_kind(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    """The object, if it is what the event type says (`charge`, `dispute`...)."""
    if obj.get("object") != kind:
        raise Malformed(f"the object is {shown(obj.get('object'))}, not {kind}")
    return obj


def amount(obj: dict[str, Any], name: str) -> int:
    """A whole number of minor units."""
    value = obj.get(name)
    if type(value) is not int or not 0 <= value <= MAX_AMOUNT:
        raise Malformed(f"{name} is {shown(value)}")
    return value


def is_id(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and STRIPE_ID.fullmatch(value) is not None


@overload
def ref(obj: dict[str, Any], name: str, *, required: Literal[True]) -> str: ...
@overload
def ref(obj: dict[str, Any], name: str, *, required: bool = False) -> str | None: ...
def ref(obj: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    """A Stripe id (`ch_...`, `pi_...`, `dp_...`); None when absent and not required."""
    value = obj.get(name)
    if value is None and not required:
        return None
    if not is_id(value):
        raise Malformed(f"{name} is {shown(value)}")
    return value


def status(obj: dict[str, Any], name: str) -> str:
    """A status word (`paid`, `needs_response`...)."""
    value = obj.get(name)
    if not isinstance(value, str) or STATUS.fullmatch(value) is None:
        raise Malformed(f"{name} is {shown(value)}")
    return value


def envelope(text: str) -> tuple[str, str, dict[str, Any]] | None:
    """An event's id, type and body, or None when it is not an event at all."""
    try:
        event = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(event, dict):
        return None
    event_id, event_type = event.get("id"), event.get("type")
    if not is_id(event_id) or not isinstance(event_type, str):
        return None
    if EVENT_TYPE.fullmatch(event_type) is None:
        return None
    return event_id, event_type, event


def unreadable_id(text: str) -> str:
    """The id an unreadable body is stored under: the same body is stored once."""
    return "unreadable:" + hashlib.sha256(text.encode()).hexdigest()


def currency(obj: dict[str, Any], name: str) -> str:
    """An ISO currency code, upper case as the portal writes them."""
    value = obj.get(name)
    if not isinstance(value, str) or len(value) != 3 or not value.isascii() or not value.isalpha():
        raise Malformed(f"{name} is {shown(value)}")
    return value.upper()


def purchase_id(value: Any) -> int | None:
    """A purchase id as the portal writes it (decimal digits), or None: not one of ours."""
    number = whole_number(value)
    return number if number else None


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
    charge, intent = (value if is_id(value) else None for value in found)
    return charge, intent
