"""Where the client pays: Stripe Checkout when STRIPE_SECRET_KEY is set, otherwise the
portal's own clearly labelled test checkout, whose events take the webhook's code path."""

from __future__ import annotations

import json
import time

import stripe

from portal.credits.purchases import event_receive
from portal.credits.tables import Purchase
from portal.errors import N_, DomainError

TEST_OUTCOMES = ("pay", "fail", "cancel")


class PaymentsUnavailable(DomainError):
    """No Stripe key and no test checkout: this portal cannot take a payment."""

    code = "payments_unavailable"

    def __init__(self) -> None:
        super().__init__(N_("Payments are not available on this portal at the moment."))


def stripe_client(*, api_key: str, api_base: str | None) -> stripe.StripeClient:
    """The official SDK over httpx (async), retrying network errors; `api_base` points it
    at another address (tests use a local stub of the Stripe API)."""
    options: dict[str, object] = {"http_client": stripe.HTTPXClient(), "max_network_retries": 2}
    if api_base:
        options["base_addresses"] = {"api": api_base}
    return stripe.StripeClient(api_key, **options)  # type: ignore[arg-type]


async def stripe_checkout_url(
    *,
    purchase: Purchase,
    api_key: str,
    api_base: str | None,
    success_url: str,
    cancel_url: str,
) -> str:
    """A Checkout Session for the purchase (created once: its id is the idempotency key)."""
    client = stripe_client(api_key=api_key, api_base=api_base)
    session = await client.v1.checkout.sessions.create_async(
        params={
            "mode": "payment",
            "client_reference_id": str(purchase.id),
            "metadata": {"purchase_id": str(purchase.id)},
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": purchase.currency.lower(),
                        "unit_amount": purchase.price_minor,
                        "product_data": {
                            "name": f"{purchase.pack_name} ({purchase.credits} credits)"
                        },
                    },
                }
            ],
            "success_url": success_url,
            "cancel_url": cancel_url,
        },
        options={"idempotency_key": f"purchase-{purchase.id}"},
    )
    await Purchase.update({Purchase.checkout_session: session["id"]}).where(
        Purchase.id == purchase.id
    )
    return str(session["url"])


LOCAL_SESSION = "cs_local_"  # the test checkout's sessions, which Stripe never saw


async def test_session(purchase: Purchase) -> Purchase:
    """The purchase with the test checkout's session recorded, as Stripe's would be."""
    if purchase.checkout_session is None:
        await Purchase.update({Purchase.checkout_session: f"{LOCAL_SESSION}{purchase.id}"}).where(
            (Purchase.id == purchase.id) & Purchase.checkout_session.is_null()
        )
        purchase = await Purchase.objects().get(Purchase.id == purchase.id)
    return purchase


def _test_event(purchase: Purchase, event_type: str, payment_status: str) -> dict[str, object]:
    return {
        "id": f"evt_test_{purchase.id}_{event_type}",
        "object": "event",
        "type": event_type,
        "livemode": False,
        "data": {
            "object": {
                "object": "checkout.session",
                "id": purchase.checkout_session,
                "client_reference_id": str(purchase.id),
                "metadata": {"purchase_id": str(purchase.id)},
                "payment_intent": f"pi_test_{purchase.id}",
                "payment_status": payment_status,
                "amount_total": purchase.price_minor,
                "currency": purchase.currency.lower(),
            }
        },
    }


async def test_checkout_complete(*, purchase: Purchase, outcome: str, secret: str) -> None:
    """What Stripe would send for this outcome, signed with the local webhook secret and
    handed to the same function the webhook endpoint calls."""
    purchase = await test_session(purchase)
    events = {
        "pay": [("checkout.session.completed", "paid")],
        "fail": [
            ("checkout.session.completed", "unpaid"),
            ("checkout.session.async_payment_failed", "unpaid"),
        ],
        "cancel": [("checkout.session.expired", "unpaid")],
    }[outcome]
    for event_type, payment_status in events:
        body = json.dumps(_test_event(purchase, event_type, payment_status))
        header = stripe.WebhookSignature.generate_signature_header(
            body, secret, timestamp=int(time.time())
        )
        await event_receive(payload=body.encode(), signature=header, secret=secret)
