"""Fields of signed Stripe events, read without trusting their shapes."""

from __future__ import annotations

from typing import Any

import pytest

from portal.credits import stripe_fields as fields


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12", 12),
        ("2147483647", 2**31 - 1),
        ("2147483648", None),
        (str(10**40), None),
        ("9" * 10_000, None),
        (12, None),
        (10**40, None),
        ("0", None),
        ("-1", None),
        ("１２", None),  # fullwidth digits are digits to str.isdigit
        ("someone-else", None),
        (None, None),
    ],
)
def test_purchase_ids_are_the_portals_own(value: Any, expected: int | None) -> None:
    assert fields.purchase_id(value) == expected


@pytest.mark.parametrize(
    ("obj", "refs"),
    [
        ({"object": "charge", "id": "ch_1", "payment_intent": "pi_1"}, ("ch_1", "pi_1")),
        ({"object": "dispute", "charge": "ch_1", "payment_intent": None}, ("ch_1", None)),
        ({"object": "payment_intent", "id": "pi_1", "latest_charge": "ch_1"}, ("ch_1", "pi_1")),
        ({"object": "checkout.session", "payment_intent": "pi_1"}, (None, "pi_1")),
        ({"object": "charge", "id": {"x": 1}, "payment_intent": "pi\x00"}, (None, None)),
        ({"object": ["charge"], "id": "ch_1"}, (None, None)),
        ({"object": "customer", "id": "cus_1"}, (None, None)),
    ],
)
def test_payment_refs(obj: dict[str, Any], refs: tuple[str | None, str | None]) -> None:
    assert fields.payment_refs({"data": {"object": obj}}) == refs
    assert fields.payment_refs({"data": []}) == (None, None)


def test_envelopes() -> None:
    assert fields.envelope('{"id": "evt_1", "type": "charge.refunded"}') == (
        "evt_1",
        "charge.refunded",
        {"id": "evt_1", "type": "charge.refunded"},
    )
    for text in (
        "[]",
        "nope",
        "[" * 100_000,
        '{"id": 1, "type": "x"}',
        '{"id": "evt_1", "type": "Charge Refunded"}',
        '{"id": "evt_\\u0000", "type": "x"}',
        '{"id": "evt_1"}',
    ):
        assert fields.envelope(text) is None, text
    assert fields.unreadable_id("nope") == fields.unreadable_id("nope")


def test_amounts_and_currencies() -> None:
    assert fields.amount({"a": 0}, "a") == 0
    for bad in (True, 1.0, "1", -1, 2**31, None):
        with pytest.raises(fields.Malformed):
            fields.amount({"a": bad}, "a")
    assert fields.currency({"c": "jpy"}, "c") == "JPY"
    for bad in ("euro", "€€€", ["eur"], None):
        with pytest.raises(fields.Malformed):
            fields.currency({"c": bad}, "c")
