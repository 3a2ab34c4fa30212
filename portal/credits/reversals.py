"""Money going back after a purchase was paid: refunds and disputes of its charge.

- A refund of a share of the charge takes back that share of the credits (rounded down)
  from the purchase's lot. Refunded amounts are cumulative: only the new share is taken.
  The share is of the charge as it was made, in its own currency: with Adaptive Pricing a
  420 € pack may be charged 68,000 JPY and refunded in yen. What was already used, held or
  expired cannot be taken and is recorded as the purchase's shortfall.
- A dispute (or an inquiry) takes back the purchase's unused credits while it is open;
  closed in the client's favour (`won`, or `warning_closed`: an inquiry that never became a
  chargeback) they return to the lot they came from; `lost`, they stay taken. The ledger
  effects are keyed on the dispute's id, with its state kept per dispute, and only a
  charge's first dispute moves credits: another one on the same charge changes nothing.
- Refunds and disputes name the charge (`ch_...`) and, usually, the PaymentIntent; Stripe's
  own disputes may carry `payment_intent: null`. The purchase records its charge when an
  event first links the two (`charge.*` events, `payment_intent.*` events); events that
  arrive before their purchase is known are applied once it is (`waiting_apply`).
"""

from __future__ import annotations

import logging
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from portal.credits import ledger
from portal.credits.stripe_fields import (
    Malformed,
    amount,
    currency,
    event_object,
    of_kind,
    ref,
    shown,
    status,
)
from portal.credits.tables import Dispute, Entry, Purchase, StripeEvent
from portal.db import is_postgres, write_transaction
from portal.events.log import record

log = logging.getLogger(__name__)

DISPUTE_EVENTS = ("charge.dispute.created", "charge.dispute.closed")
EVENTS = ("charge.refunded", *DISPUTE_EVENTS)
GIVEN_BACK = ("won", "warning_closed")  # closed in the client's favour
CLOSED = (*GIVEN_BACK, "lost")


async def _locked_purchase(payment_intent: str | None, charge: str | None) -> Purchase | None:
    """Inside a write transaction: the paid purchase of this payment, its changes queued."""
    match = [Purchase.payment_intent == payment_intent] if payment_intent else []
    match += [Purchase.charge == charge] if charge else []
    if not match:
        return None
    where = match[0] if len(match) == 1 else match[0] | match[1]
    query = Purchase.objects().where(where & Purchase.lot.is_not_null())
    if is_postgres():
        query = query.lock_rows()
    return await query.first()


async def _wallet_id(purchase: Purchase) -> int:
    return (await ledger.wallet_for(client_id=purchase.client, expert_id=purchase.expert)).id


async def refund_apply(charge: dict[str, Any]) -> None:
    """`charge.refunded`: take back the credits of the newly refunded share of the charge."""
    charged, refunded = amount(charge, "amount"), amount(charge, "amount_refunded")
    charge_currency = currency(charge, "currency")
    if charged == 0 or refunded > charged:
        raise Malformed(f"amount_refunded {refunded} of a charge of {charged}")
    async with write_transaction():
        purchase = await _locked_purchase(
            ref(charge, "payment_intent"), ref(charge, "id", required=True)
        )
        if purchase is None:
            return
        target = purchase.credits * refunded // charged
        if refunded <= purchase.refunded_minor and target <= purchase.refund_credits:
            return  # an older or repeated event
        asked, short = target - purchase.refund_credits, 0
        # Credits an open dispute holds are out of the wallet already: the refund takes
        # them from the dispute, which gives back only the rest if it closes in the
        # client's favour (refunded and given back would be paid twice).
        from_dispute = await _refund_from_open_dispute(purchase, asked) if asked > 0 else 0
        if asked - from_dispute > 0:
            _entry, short = await ledger.refund(
                wallet_id=await _wallet_id(purchase),
                lot_id=purchase.lot,
                credits=asked - from_dispute,
                key=f"refund:purchase:{purchase.id}:{target}",
                reference=f"purchase:{purchase.id}",
            )
        await Purchase.update(
            {
                Purchase.refunded_minor: max(refunded, purchase.refunded_minor),
                Purchase.refund_currency: charge_currency,
                Purchase.charged_minor: charged,
                Purchase.refund_credits: max(target, purchase.refund_credits),
                Purchase.refund_shortfall: Purchase.refund_shortfall + short,
                Purchase.disputed_credits: Purchase.disputed_credits - from_dispute,
            }
        ).where(Purchase.id == purchase.id)
        await record(
            "purchase.refunded",
            f"purchase:{purchase.id}:refunded:{refunded}",
            purchase=purchase.id,
            client=purchase.client,
            expert=purchase.expert,
            refunded_minor=refunded,
            charged_minor=charged,
            currency=charge_currency,
            credits=asked,
            short=short,
        )


async def _refund_from_open_dispute(purchase: Purchase, asked: int) -> int:
    """Inside the refund's transaction: up to `asked` credits moved from the purchase's open
    dispute to the refund; how many."""
    holding = (
        await Dispute.objects()
        .where(
            (Dispute.purchase == purchase.id) & Dispute.closed_at.is_null() & (Dispute.taken > 0)
        )
        .first()
    )
    if holding is None:
        return 0
    moved = min(asked, holding.taken)
    await Dispute.update({Dispute.taken: Dispute.taken - moved}).where(Dispute.id == holding.id)
    return moved


async def dispute_apply(event_type: str, dispute: dict[str, Any]) -> None:
    """`charge.dispute.created` or `.closed`, in any order and as often as Stripe likes."""
    dispute_id = ref(dispute, "id", required=True)
    told = status(dispute, "status")
    closing = event_type == "charge.dispute.closed"
    if closing and told not in CLOSED:
        raise Malformed(f"closed with status {shown(told)}")
    async with write_transaction():
        purchase = await _locked_purchase(
            ref(dispute, "payment_intent"), ref(dispute, "charge", required=True)
        )
        if purchase is None:
            log.info("dispute %s: its charge is not known yet; applied once it is", dispute_id)
            return
        row = await Dispute.objects().where(Dispute.dispute_id == dispute_id).first()
        if row is None:
            row = Dispute(dispute_id=dispute_id, purchase=purchase.id, status=told)
            row.taken = await _taken_before_disputes_were_kept(purchase)
            await row.save()
        elif row.closed_at is not None or row.purchase != purchase.id:
            return  # settled already: told again, or told otherwise too late
        first = await Dispute.objects().where(Dispute.purchase == purchase.id).order_by(Dispute.id)
        if first[0].id != row.id:
            log.warning(
                "dispute %s: the charge of purchase %s was disputed before (%s); nothing changes",
                dispute_id,
                purchase.id,
                first[0].dispute_id,
            )
            await _dispute_update(row, told, closing)
            return
        taken = row.taken
        took_before = await Entry.exists().where(Entry.idempotency_key == _take_key(dispute_id))
        if not taken and not took_before and (not closing or told == "lost"):
            # Once per dispute: a refund may have moved all it took (taken is 0 again).
            taken = await _dispute_take(purchase, dispute_id)
        if closing and told in GIVEN_BACK and taken:
            await ledger.restore(
                wallet_id=await _wallet_id(purchase),
                lot_id=purchase.lot,
                credits=taken,
                key=f"dispute-won:{dispute_id}",
                reference=f"purchase:{purchase.id}",
            )
        held_back = taken - row.taken if not closing else -row.taken
        await Purchase.update(
            {Purchase.disputed_credits: Purchase.disputed_credits + held_back}
        ).where(Purchase.id == purchase.id)
        row.taken = taken
        await _dispute_update(row, told, closing)
        await record(
            "purchase.disputed",
            f"dispute:{dispute_id}:{'closed' if closing else 'open'}:{told}",
            purchase=purchase.id,
            client=purchase.client,
            expert=purchase.expert,
            dispute=dispute_id,
            status=told,
            closed=closing,
            held_back=held_back,
        )


async def _taken_before_disputes_were_kept(purchase: Purchase) -> int:
    """Credits a dispute opened before disputes had rows of their own took (under the key
    `dispute:purchase:<id>`): the purchase's first dispute row takes them over, so that its
    closing gives them back or keeps them."""
    if purchase.disputed_credits <= 0 or await Dispute.exists().where(
        Dispute.purchase == purchase.id
    ):
        return 0
    return purchase.disputed_credits


def _take_key(dispute_id: str) -> str:
    return f"dispute:{dispute_id}"


async def _dispute_take(purchase: Purchase, dispute_id: str) -> int:
    entry, _short = await ledger.refund(
        wallet_id=await _wallet_id(purchase),
        lot_id=purchase.lot,
        credits=purchase.credits,
        key=_take_key(dispute_id),
        reference=f"purchase:{purchase.id}",
    )
    return -entry.amount if entry is not None else 0


async def _dispute_update(row: Dispute, status: str, closing: bool) -> None:
    values: dict[Any, Any] = {Dispute.status: status, Dispute.taken: row.taken}
    if closing:
        values[Dispute.closed_at] = datetime.now(UTC)
    await Dispute.update(values).where(Dispute.id == row.id)


async def reversal_apply(event_type: str, obj: dict[str, Any]) -> None:
    if event_type == "charge.refunded":
        await refund_apply(of_kind(obj, "charge"))
    elif event_type in DISPUTE_EVENTS:
        await dispute_apply(event_type, of_kind(obj, "dispute"))


async def charge_learnt(*, charge: str, payment_intent: str) -> None:
    """An event linked a charge to its PaymentIntent: the paid purchase of that payment
    records its charge, and events that were waiting for it are applied."""
    learnt = (
        await Purchase.update({Purchase.charge: charge})
        .where(
            (Purchase.payment_intent == payment_intent)
            & Purchase.charge.is_null()
            & Purchase.lot.is_not_null()
        )
        .returning(Purchase.id)
    )
    for row in learnt:
        paid = await Purchase.objects().get(Purchase.id == row["id"])
        assert paid is not None  # purchases are never deleted
        await waiting_apply(paid)


async def charge_recall(purchase: Purchase) -> None:
    """A purchase just paid: its charge, if an event already named it, and the events that
    were waiting for it."""
    if purchase.payment_intent is None or purchase.charge is not None:
        return
    link = (
        await StripeEvent.select(StripeEvent.charge)
        .where(
            (StripeEvent.payment_intent == purchase.payment_intent)
            & StripeEvent.charge.is_not_null()
        )
        .first()
    )
    if link is not None:
        await charge_learnt(charge=link["charge"], payment_intent=purchase.payment_intent)


async def waiting_apply(purchase: Purchase) -> None:
    """Apply again, in the order received, the refunds and disputes that name the
    purchase's charge or PaymentIntent (each is safe to apply twice)."""
    names = [StripeEvent.charge == purchase.charge] if purchase.charge else []
    if purchase.payment_intent:
        names.append(StripeEvent.payment_intent == purchase.payment_intent)
    if not names:
        return
    where = names[0] if len(names) == 1 else names[0] | names[1]
    waiting = (
        await StripeEvent.objects()
        .where(where & StripeEvent.type.is_in(list(EVENTS)))
        .order_by(StripeEvent.id)
    )
    for stored in waiting:
        with suppress(Malformed):  # logged when it was received
            await reversal_apply(stored.type, event_object(stored.payload))
