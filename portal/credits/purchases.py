"""Buying credit packs: a purchase is recorded first (its id is the Checkout idempotency
key and client_reference_id), then paid through Stripe, and credits are granted only from
a verified webhook event, never from the browser coming back.

Webhook events are verified on the raw body, stored once by event id, then processed.
Processing is safe to repeat and to receive out of order: a grant has a unique key
("grant:purchase:<id>"), and a purchase's status only moves forward
(pending -> processing -> paid; pending or processing -> failed or expired; never back).

A signed event grants only the purchase it pays, at its price: the Checkout Session must be
the purchase's own (the one recorded when it was created, or, if none was recorded, one
whose metadata - which only the portal can set - names it), and its amount and currency
those of the purchase. `client_reference_id` alone proves nothing: a Payment Link on the
same Stripe account lets a customer choose it. Anything else is recorded on the purchase
as a mismatch, logged, and grants nothing.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe

from portal.accounts.tables import Expert, User
from portal.charter.services import pack_of, version_current
from portal.credits import ledger, stripe_fields
from portal.credits.reversals import charge_learnt, charge_recall, reversal_apply
from portal.credits.services import add_months
from portal.credits.stripe_fields import Malformed, shown
from portal.credits.tables import Purchase, PurchaseStatus, StripeEvent
from portal.db import is_postgres, is_unique_violation, write_transaction
from portal.errors import N_, Conflict, DomainError, NotFound
from portal.events.log import record

log = logging.getLogger(__name__)

SIGNATURE_TOLERANCE_S = 300
OPEN = (PurchaseStatus.pending.value, PurchaseStatus.processing.value)


class InvalidSignature(DomainError):
    code = "invalid_signature"

    def __init__(self) -> None:
        super().__init__(N_("The webhook signature is missing, wrong, too old or in the future."))


REUSE_PENDING = timedelta(minutes=30)


async def purchase_start(
    *, client_id: int, expert: Expert, pack_id: int, next_path: str = ""
) -> Purchase:
    """Record what the client is about to buy, at today's price and charter version.

    A pending purchase of the same pack by the same client, from the last 30 minutes, is
    reused: a double click leads to the same checkout (its idempotency key is the id). A
    client's purchase starts are serialized (a row lock on the client on PostgreSQL, the
    immediate transaction on SQLite), so simultaneous clicks find the one purchase.
    `next_path`: the page the client came from (a slot chosen...), offered once paid."""
    pack = await pack_of(expert=expert, pack_id=pack_id)
    if not pack.active:
        raise Conflict(N_("This credit pack is no longer sold."), code="pack_archived")
    current = await version_current(expert=expert)
    if current is None:
        raise NotFound(N_("This expert has no published charter."))
    async with write_transaction():  # one client's purchase starts, one at a time
        if is_postgres():  # SQLite: the immediate transaction already queues every writer
            await User.select(User.id).where(User.id == client_id).lock_rows()
        recent = (
            await Purchase.objects()
            .where(
                (Purchase.client == client_id)
                & (Purchase.pack == pack.id)
                & (Purchase.status == PurchaseStatus.pending.value)
                & (Purchase.price_minor == pack.price_minor)
                & (Purchase.created_at > datetime.now(UTC) - REUSE_PENDING)
            )
            .order_by(Purchase.id, ascending=False)
            .first()
        )
        if recent is not None:
            if next_path and recent.next_path != next_path:
                await Purchase.update({Purchase.next_path: next_path}).where(
                    Purchase.id == recent.id
                )
                recent.next_path = next_path
            return recent
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
            next_path=next_path,
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
    found = stripe_fields.purchase_id(purchase_id)
    if found is None:
        return None
    return await Purchase.objects().where(Purchase.id == found).first()


def _pays(amount: Any, currency: Any, purchase: Purchase) -> bool:
    return (
        type(amount) is int
        and amount == purchase.price_minor
        and isinstance(currency, str)
        and currency.upper() == purchase.currency.upper()
    )


def session_mismatch(purchase: Purchase, session: dict[str, Any]) -> str | None:
    """Why this Checkout Session does not pay this purchase in full; None when it does.

    With Adaptive Pricing the customer pays in their own currency: `amount_total` and
    `currency` are then theirs, and `currency_conversion` holds the merchant's amount
    (`amount_total`) and currency (`source_currency`), which must be the purchase's."""
    session_id = session.get("id")
    if purchase.checkout_session is not None:
        if session_id != purchase.checkout_session:
            return f"session {shown(session_id)} is not the purchase's own"
    else:
        metadata = session.get("metadata")
        named = metadata.get("purchase_id") if isinstance(metadata, dict) else None
        if named != str(purchase.id) or not stripe_fields.is_id(session_id):
            return f"session {shown(session_id)} was not created for this purchase"
    amount, currency = session.get("amount_total"), session.get("currency")
    conversion = session.get("currency_conversion")
    if isinstance(conversion, dict):
        amount, currency = conversion.get("amount_total"), conversion.get("source_currency")
    if not _pays(amount, currency, purchase):
        return (
            f"session {shown(session_id)} pays {shown(amount)} {shown(currency)}, "
            f"not {purchase.price_minor} {purchase.currency}"
        )
    return None


async def purchase_mismatch(*, purchase: Purchase, reason: str) -> None:
    """A payment that names this purchase but does not pay it: noted, for the expert to
    see, and logged; nothing is granted. A purchase already paid keeps its record clean
    (anyone can send a Payment Link naming another purchase): the log says it."""
    log.warning("purchase %s: payment does not match, nothing granted: %s", purchase.id, reason)
    await Purchase.update({Purchase.mismatch: reason[:1000]}).where(
        (Purchase.id == purchase.id) & (Purchase.status != PurchaseStatus.paid.value)
    )


async def purchase_paid(
    *, purchase: Purchase, payment_intent: str | None = None, checkout_session: str | None = None
) -> Purchase:
    """Grant the pack's credits (once, whatever calls this how often) and mark it paid.
    The caller has checked that the payment matches (`session_mismatch`)."""
    wallet = await ledger.wallet_for(client_id=purchase.client, expert_id=purchase.expert)
    async with write_transaction():  # the credits, the purchase paid and its event at once
        if is_postgres():  # the purchase, then its wallet: the order refunds lock them in
            await Purchase.select(Purchase.id).where(Purchase.id == purchase.id).lock_rows()
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
        if checkout_session and purchase.checkout_session is None:
            values[Purchase.checkout_session] = checkout_session  # never written down before
        await Purchase.update(values).where(Purchase.id == purchase.id)
        paid = await Purchase.objects().get(Purchase.id == purchase.id)
        assert paid is not None  # purchases are never deleted
        await record(
            "purchase.paid",
            f"purchase:{paid.id}:paid",  # once: the key names the purchase
            purchase=paid.id,
            client=paid.client,
            expert=paid.expert,
            credits=paid.credits,
            price_minor=paid.price_minor,
            currency=paid.currency,
        )
    await charge_recall(paid)  # refunds or disputes that came first, once the credits are in
    return paid


async def purchase_advance(
    purchase: Purchase, status: PurchaseStatus, allowed: tuple[str, ...]
) -> None:
    """Move the purchase to `status` if it is still in one of `allowed` (never backwards)."""
    await Purchase.update({Purchase.status: status.value}).where(
        (Purchase.id == purchase.id) & Purchase.status.is_in(list(allowed))
    )


PAYING = {"checkout.session.completed", "checkout.session.async_payment_succeeded"}


async def _on_session(event_id: str, event_type: str, session: dict[str, Any]) -> None:
    reference = session.get("client_reference_id")
    if reference is not None and not isinstance(reference, str):
        raise Malformed(f"client_reference_id is {shown(reference)}")
    for name in ("metadata", "currency_conversion"):
        if not isinstance(session.get(name), dict | None):
            raise Malformed(f"{name} is {shown(session.get(name))}")
    purchase = await _purchase(reference)
    if purchase is None:
        log.info("event %s: names no purchase of this portal", event_id)
        return  # not one of ours (another integration on the same account)
    if (why := session_mismatch(purchase, session)) is not None:
        if event_type in PAYING:
            await purchase_mismatch(purchase=purchase, reason=f"event {event_id}: {why}")
        else:
            log.warning("event %s ignored for purchase %s: %s", event_id, purchase.id, why)
        return
    intent = stripe_fields.ref(session, "payment_intent")
    if event_type == "checkout.session.completed":
        if stripe_fields.status(session, "payment_status") in ("paid", "no_payment_required"):
            await purchase_paid(
                purchase=purchase, payment_intent=intent, checkout_session=session["id"]
            )
        else:  # a delayed method: the money is not there yet
            await purchase_advance(
                purchase, PurchaseStatus.processing, (PurchaseStatus.pending.value,)
            )
    elif event_type == "checkout.session.async_payment_succeeded":
        await purchase_paid(
            purchase=purchase, payment_intent=intent, checkout_session=session["id"]
        )
    elif event_type == "checkout.session.async_payment_failed":
        await purchase_advance(purchase, PurchaseStatus.failed, OPEN)
    elif event_type == "checkout.session.expired":
        await purchase_advance(purchase, PurchaseStatus.expired, OPEN)


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
    try:
        data = stripe_fields.event_object(stored.payload)
        if stored.type in HANDLED:
            await _on_session(
                event_id, stored.type, stripe_fields.of_kind(data, "checkout.session")
            )
        else:
            await reversal_apply(stored.type, data)
        if stored.charge and stored.payment_intent:
            await charge_learnt(charge=stored.charge, payment_intent=stored.payment_intent)
    except Malformed as exc:
        log.warning("event %s (%s) is malformed, nothing applied: %s", event_id, stored.type, exc)
    await StripeEvent.update({StripeEvent.processed_at: datetime.now(UTC)}).where(
        StripeEvent.id == stored.id
    )


def _signed_at(header: str) -> int:
    """The time in a verified Stripe-Signature header (`t=...`), as Stripe's SDK reads it."""
    items = [item.split("=", 2) for item in header.split(",")]
    return int(next(item[1] for item in items if item[0] == "t"))


async def event_receive(*, payload: bytes, signature: str | None, secret: str) -> bool:
    """Verify, store once, process. False when the event had already been received.

    Signed but unreadable (not an event, or not the shapes Stripe sends): stored, logged
    and acknowledged, so that Stripe does not retry it for days; nothing is applied."""
    text = payload.decode("utf-8", errors="replace")
    try:
        stripe.WebhookSignature.verify_header(text, signature, secret, SIGNATURE_TOLERANCE_S)
    except stripe.SignatureVerificationError as exc:
        raise InvalidSignature() from exc
    if signature is None or _signed_at(signature) > time.time() + SIGNATURE_TOLERANCE_S:
        raise InvalidSignature()  # the SDK only refuses signatures too old
    found = stripe_fields.envelope(text)
    if found is None:
        event_id, event_type, charge, intent = (
            stripe_fields.unreadable_id(text),
            "unreadable",
            None,
            None,
        )
    else:
        event_id, event_type, event = found
        charge, intent = stripe_fields.payment_refs(event)
    try:
        await StripeEvent(
            event_id=event_id,
            type=event_type,
            payload=text.replace("\x00", "\ufffd"),  # PostgreSQL text holds no NUL
            charge=charge,
            payment_intent=intent,
        ).save()
        first = True
    except Exception as exc:  # the same event again (Stripe retries, or a duplicate)
        if not is_unique_violation(exc):
            raise
        first = False
    if found is None:
        log.warning("event %s is unreadable: stored, nothing applied", event_id)
        return first
    # Process even a repeat: the first delivery may have stored it and died before acting.
    await event_process(event_id=event_id)
    return first
