"""The reconciler: asks Stripe about purchases still open after 30 minutes, so a lost or
late webhook never loses a payment nor leaves a purchase pending for ever.

It acts through the same functions as the webhook (the grant's unique key makes a
webhook arriving afterwards harmless), one purchase at a time: a Stripe error on one is
counted and the others go on; the next run tries it again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe

from portal.credits.checkout import LOCAL_SESSION, stripe_client
from portal.credits.purchases import (
    OPEN,
    purchase_advance,
    purchase_mismatch,
    purchase_paid,
    session_mismatch,
)
from portal.credits.tables import Purchase, PurchaseStatus

log = logging.getLogger(__name__)

RECONCILE_AFTER = timedelta(minutes=30)
# A Checkout Session expires 24 hours after its creation at the latest: a purchase that
# never got one (the test checkout, or a creation that failed) is abandoned after that.
ABANDONED_AFTER = timedelta(hours=25)
BATCH = 200
PAID = ("paid", "no_payment_required")


@dataclass(slots=True)
class Reconciled:
    checked: int = 0
    paid: int = 0
    processing: int = 0
    failed: int = 0
    expired: int = 0
    unchanged: int = 0
    mismatched: int = 0  # paid, but not the purchase's price: failed, nothing granted
    errors: int = 0


async def purchases_reconcile(
    *, api_key: str | None, api_base: str | None = None, now: datetime | None = None
) -> Reconciled:
    """Settle the open purchases older than 30 minutes (the oldest 200 per run)."""
    now = now or datetime.now(UTC)
    due = (
        await Purchase.objects()
        .where(Purchase.status.is_in(list(OPEN)) & (Purchase.created_at <= now - RECONCILE_AFTER))
        .order_by(Purchase.created_at)
        .limit(BATCH)
    )
    client = stripe_client(api_key=api_key, api_base=api_base) if api_key else None
    report = Reconciled()
    for purchase in due:
        report.checked += 1
        try:
            outcome = await _reconcile(purchase, client, now)
        except stripe.StripeError as exc:
            log.warning("purchase %s: Stripe did not answer (%s)", purchase.id, type(exc).__name__)
            report.errors += 1
            continue
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def _id(value: Any) -> str | None:
    """An id whether Stripe sent it alone or as an expanded object."""
    if value is None or isinstance(value, str):
        return value
    return str(value["id"])


async def _reconcile(purchase: Purchase, client: stripe.StripeClient | None, now: datetime) -> str:
    session_id = purchase.checkout_session
    if client is None or session_id is None or session_id.startswith(LOCAL_SESSION):
        if purchase.status == PurchaseStatus.pending.value and (
            purchase.created_at <= now - ABANDONED_AFTER
        ):
            await purchase_advance(
                purchase, PurchaseStatus.expired, (PurchaseStatus.pending.value,)
            )
            return "expired"
        return "unchanged"
    session = (await client.v1.checkout.sessions.retrieve_async(session_id)).to_dict()
    if session.get("client_reference_id") != str(purchase.id):
        log.warning("purchase %s: its Checkout Session names another purchase", purchase.id)
        return "unchanged"
    intent = _id(session.get("payment_intent"))
    if session.get("status") == "complete":
        if (why := session_mismatch(purchase, session)) is not None:
            # Its own session, complete with another amount: it will never pay this purchase.
            await purchase_mismatch(purchase=purchase, reason=f"reconciled: {why}")
            await purchase_advance(purchase, PurchaseStatus.failed, OPEN)
            return "mismatched"
        if session.get("payment_status") in PAID:
            await purchase_paid(purchase=purchase, payment_intent=intent)
            return "paid"
        # A delayed method (SEPA debit): the payment says whether the money came.
        payment = await client.v1.payment_intents.retrieve_async(intent) if intent else None
        state = payment.to_dict().get("status") if payment is not None else None
        if state == "succeeded":
            await purchase_paid(purchase=purchase, payment_intent=intent)
            return "paid"
        if state in ("canceled", "requires_payment_method"):
            await purchase_advance(purchase, PurchaseStatus.failed, OPEN)
            return "failed"
        if purchase.status == PurchaseStatus.pending.value:
            await purchase_advance(
                purchase, PurchaseStatus.processing, (PurchaseStatus.pending.value,)
            )
            return "processing"
        return "unchanged"
    if session.get("status") == "expired":
        await purchase_advance(purchase, PurchaseStatus.expired, OPEN)
        return "expired"
    return "unchanged"
