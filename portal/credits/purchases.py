"""Buying credit packs: a purchase is recorded first (its id is the Checkout idempotency
key and client_reference_id), then paid through Stripe, and credits are granted only from
a verified webhook event, never from the browser coming back.

Webhook events are verified on the raw body, stored once by event id, then processed.
Processing is safe to repeat and to receive out of order: a grant has a unique key
("grant:purchase:<id>"), and a purchase's status only moves forward
(pending -> processing -> paid; pending or processing -> failed or expired; never back).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import stripe

from portal.accounts.tables import Expert
from portal.charter.services import version_current
from portal.charter.tables import CreditPack
from portal.credits import ledger
from portal.credits.services import add_months
from portal.credits.tables import Purchase, PurchaseStatus, StripeEvent
from portal.db import is_unique_violation
from portal.errors import N_, Conflict, DomainError, NotFound

SIGNATURE_TOLERANCE_S = 300
OPEN = (PurchaseStatus.pending.value, PurchaseStatus.processing.value)


class InvalidSignature(DomainError):
    code = "invalid_signature"

    def __init__(self) -> None:
        super().__init__(N_("The webhook signature is missing, wrong or too old."))


async def purchase_start(*, client_id: int, expert: Expert, pack_id: int) -> Purchase:
    """Record what the client is about to buy, at today's price and charter version."""
    pack = (
        await CreditPack.objects()
        .where((CreditPack.id == pack_id) & (CreditPack.expert == expert.id))
        .first()
    )
    if pack is None:
        raise NotFound(N_("This credit pack does not exist."))
    if not pack.active:
        raise Conflict(N_("This credit pack is no longer sold."), code="pack_archived")
    current = await version_current(expert=expert)
    if current is None:
        raise NotFound(N_("This expert has no published charter."))
    purchase = Purchase(
        client=client_id,
        expert=expert.id,
        pack=pack.id,
        pack_name=pack.name,
        credits=pack.credits,
        price_minor=pack.price_minor,
        currency=pack.currency,
        charter_version=current.number,
        validity_months=current.rules.credit_validity_months,
    )
    await purchase.save()
    return purchase


async def purchase_of(*, client_id: int, purchase_id: int) -> Purchase:
    """One of the client's purchases; someone else's is not found."""
    purchase = (
        await Purchase.objects()
        .where((Purchase.id == purchase_id) & (Purchase.client == client_id))
        .first()
    )
    if purchase is None:
        raise NotFound(N_("This purchase does not exist."))
    return purchase


async def _purchase(purchase_id: Any) -> Purchase | None:
    try:
        return await Purchase.objects().where(Purchase.id == int(purchase_id)).first()
    except (TypeError, ValueError):
        return None


async def purchase_paid(*, purchase: Purchase, payment_intent: str | None = None) -> Purchase:
    """Grant the pack's credits (once, whatever calls this how often) and mark it paid."""
    wallet = await ledger.wallet_for(client_id=purchase.client, expert_id=purchase.expert)
    paid_at = purchase.paid_at or datetime.now(UTC)
    entry = await ledger.grant(
        wallet_id=wallet.id,
        credits=purchase.credits,
        expires_at=add_months(paid_at, purchase.validity_months),
        reference=f"purchase:{purchase.id}",
        key=f"grant:purchase:{purchase.id}",
    )
    values: dict[Any, Any] = {
        Purchase.status: PurchaseStatus.paid.value,
        Purchase.lot: entry.lot,
        Purchase.paid_at: paid_at,
    }
    if payment_intent:
        values[Purchase.payment_intent] = payment_intent
    await Purchase.update(values).where(Purchase.id == purchase.id)
    return await Purchase.objects().get(Purchase.id == purchase.id)


async def _move(purchase: Purchase, status: PurchaseStatus, allowed: tuple[str, ...]) -> None:
    await Purchase.update({Purchase.status: status.value}).where(
        (Purchase.id == purchase.id) & Purchase.status.is_in(list(allowed))
    )


async def _on_session(event_type: str, session: dict[str, Any]) -> None:
    purchase = await _purchase(session.get("client_reference_id"))
    if purchase is None:
        return  # not one of ours (another integration on the same account)
    intent = session.get("payment_intent")
    if event_type == "checkout.session.completed":
        if session.get("payment_status") in ("paid", "no_payment_required"):
            await purchase_paid(purchase=purchase, payment_intent=intent)
        else:  # a delayed method: the money is not there yet
            await _move(purchase, PurchaseStatus.processing, (PurchaseStatus.pending.value,))
    elif event_type == "checkout.session.async_payment_succeeded":
        await purchase_paid(purchase=purchase, payment_intent=intent)
    elif event_type == "checkout.session.async_payment_failed":
        await _move(purchase, PurchaseStatus.failed, OPEN)
    elif event_type == "checkout.session.expired":
        await _move(purchase, PurchaseStatus.expired, OPEN)


HANDLED = {
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
}


async def event_process(*, event_id: str) -> None:
    """Act on a stored event; safe to run again."""
    stored = await StripeEvent.objects().where(StripeEvent.event_id == event_id).first()
    if stored is None:
        raise NotFound()
    event = json.loads(stored.payload)
    if stored.type in HANDLED:
        await _on_session(stored.type, event["data"]["object"])
    await StripeEvent.update({StripeEvent.processed_at: datetime.now(UTC)}).where(
        StripeEvent.id == stored.id
    )


async def event_receive(*, payload: bytes, signature: str | None, secret: str) -> bool:
    """Verify, store once, process. False when the event had already been received."""
    text = payload.decode("utf-8", errors="replace")
    try:
        stripe.WebhookSignature.verify_header(text, signature, secret, SIGNATURE_TOLERANCE_S)
        event = json.loads(text)
        event_id, event_type = str(event["id"]), str(event["type"])
    except (stripe.SignatureVerificationError, ValueError, KeyError, TypeError) as exc:
        raise InvalidSignature() from exc
    try:
        await StripeEvent(event_id=event_id, type=event_type, payload=text).save()
        first = True
    except Exception as exc:  # the same event again (Stripe retries, or a duplicate)
        if not is_unique_violation(exc):
            raise
        first = False
    # Process even a repeat: the first delivery may have stored it and died before acting.
    await event_process(event_id=event_id)
    return first
