"""Purchases paid through signed Stripe webhook events: verified, stored once, processed
once, in any order."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from typing import Any

import pytest
import stripe
from httpx import AsyncClient

from portal.accounts.tables import Expert
from portal.charter.tables import CreditPack
from portal.credits import ledger
from portal.credits.purchases import purchase_start
from portal.credits.services import verify_all
from portal.credits.tables import Entry, Purchase, PurchaseStatus, StripeEvent, Wallet
from portal.errors import Conflict, NotFound
from portal.events.tables import Event
from portal.settings import get_settings
from tests.support import login, make_published_expert, make_user

SECRET = get_settings().webhook_secret


def _event(event_type: str, purchase: Purchase, n: int = 1, **session: Any) -> dict[str, Any]:
    """The event Stripe sends for the purchase's Checkout Session (as created by the portal:
    its price, its currency, the purchase id in its metadata)."""
    obj = {
        "object": "checkout.session",
        "id": f"cs_test_{purchase.id}",
        "client_reference_id": str(purchase.id),
        "metadata": {"purchase_id": str(purchase.id)},
        "payment_intent": f"pi_{purchase.id}",
        "payment_status": "paid",
        "amount_total": purchase.price_minor,
        "currency": purchase.currency.lower(),
        **session,
    }
    return {
        "id": f"evt_{purchase.id}_{event_type}_{n}",
        "object": "event",
        "type": event_type,
        "data": {"object": obj},
    }


async def _deliver(
    client: AsyncClient,
    event: dict[str, Any],
    *,
    secret: str = SECRET,
    timestamp: int | None = None,
    tamper: bool = False,
) -> Any:
    body = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=timestamp)
    if tamper:
        body = body.replace('"paid"', '"PAID"')
    return await client.post(
        "/webhooks/stripe",
        content=body.encode(),
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )


async def _purchase() -> Purchase:
    await make_published_expert(packs=(("Essentiel", 10, 420_00),))
    return await _purchase_by("c@example.org")


async def _purchase_by(email: str) -> Purchase:
    client = await make_user(email)
    expert = await Expert.objects().get(Expert.slug == "alice-expert")
    pack = await CreditPack.objects().get(CreditPack.expert == expert.id)
    purchase = await purchase_start(client_id=client.id, expert=expert, pack_id=pack.id)
    # The client went to Stripe Checkout: the purchase records its session.
    await Purchase.update({Purchase.checkout_session: f"cs_test_{purchase.id}"}).where(
        Purchase.id == purchase.id
    )
    return await Purchase.objects().get(Purchase.id == purchase.id)


async def _balance(purchase: Purchase) -> int:
    wallet = await Wallet.objects().where(Wallet.client == purchase.client).first()
    if wallet is None:
        return 0
    assert await ledger.wallet_check(wallet_id=wallet.id) == []
    return wallet.available


async def test_a_purchase_freezes_price_and_charter_version() -> None:
    purchase = await _purchase()
    assert (purchase.credits, purchase.price_minor, purchase.currency) == (10, 420_00, "EUR")
    assert purchase.charter_version == 1 and purchase.validity_months == 12
    assert purchase.status == PurchaseStatus.pending.value


async def test_archived_or_foreign_packs_cannot_be_bought() -> None:
    purchase = await _purchase()
    expert_id = purchase.expert
    other = await make_published_expert("other@example.org", slug="other")
    foreign = await CreditPack.objects().get(CreditPack.expert == other.id)
    from portal.accounts.tables import Expert

    expert = await Expert.objects().get(Expert.id == expert_id)
    with pytest.raises(NotFound):
        await purchase_start(client_id=purchase.client, expert=expert, pack_id=foreign.id)
    await CreditPack.update({CreditPack.active: False}).where(CreditPack.expert == expert_id)
    pack = await CreditPack.objects().get(CreditPack.expert == expert_id)
    with pytest.raises(Conflict) as caught:
        await purchase_start(client_id=purchase.client, expert=expert, pack_id=pack.id)
    assert caught.value.code == "pack_archived"


async def test_a_paid_checkout_grants_the_credits(client: AsyncClient) -> None:
    purchase = await _purchase()
    response = await _deliver(client, _event("checkout.session.completed", purchase))
    assert response.status_code == 200 and response.json() == {"received": True, "duplicate": False}
    stored = await Purchase.objects().get(Purchase.id == purchase.id)
    assert (
        stored.status == PurchaseStatus.paid.value and stored.payment_intent == f"pi_{purchase.id}"
    )
    assert await _balance(purchase) == 10


@pytest.mark.parametrize(
    "problem", ["wrong secret", "tampered", "too old", "from the future", "missing"]
)
async def test_bad_signatures_write_nothing(client: AsyncClient, problem: str) -> None:
    purchase = await _purchase()
    event = _event("checkout.session.completed", purchase)
    if problem == "missing":
        response = await client.post("/webhooks/stripe", content=json.dumps(event).encode())
    else:
        response = await _deliver(
            client,
            event,
            secret="whsec_wrong" if problem == "wrong secret" else SECRET,
            tamper=problem == "tampered",
            timestamp={"too old": int(time.time()) - 3600, "from the future": 10**12}.get(problem),
        )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"
    assert await StripeEvent.count() == 0 and await Entry.count() == 0


async def test_the_same_event_five_times_at_once_and_later_grants_once(client: AsyncClient) -> None:
    purchase = await _purchase()
    event = _event("checkout.session.completed", purchase)
    responses = await asyncio.gather(*(_deliver(client, event) for _ in range(5)))
    assert all(r.status_code == 200 for r in responses)
    assert [r.json()["duplicate"] for r in responses].count(False) == 1
    later = await _deliver(client, event)
    assert later.json()["duplicate"] is True
    assert await StripeEvent.count() == 1
    assert await Entry.count() == 1 and await _balance(purchase) == 10
    assert await Event.count().where(Event.kind == "purchase.paid") == 1


async def test_delayed_payment_then_success(client: AsyncClient) -> None:
    purchase = await _purchase()
    unpaid = _event("checkout.session.completed", purchase, payment_status="unpaid")
    await _deliver(client, unpaid)
    stored = await Purchase.objects().get(Purchase.id == purchase.id)
    assert stored.status == PurchaseStatus.processing.value and await _balance(purchase) == 0
    await _deliver(client, _event("checkout.session.async_payment_succeeded", purchase))
    assert await _balance(purchase) == 10


async def test_out_of_order_events_end_as_in_order(client: AsyncClient) -> None:
    purchase = await _purchase()
    await _deliver(client, _event("checkout.session.async_payment_succeeded", purchase))
    await _deliver(client, _event("checkout.session.completed", purchase, payment_status="unpaid"))
    await _deliver(client, _event("checkout.session.expired", purchase))
    stored = await Purchase.objects().get(Purchase.id == purchase.id)
    assert stored.status == PurchaseStatus.paid.value  # never moves back
    assert await _balance(purchase) == 10


async def test_failed_and_expired_checkouts_grant_nothing(client: AsyncClient) -> None:
    first = await _purchase()
    await _deliver(client, _event("checkout.session.completed", first, payment_status="unpaid"))
    await _deliver(client, _event("checkout.session.async_payment_failed", first))
    assert (await Purchase.objects().get(Purchase.id == first.id)).status == "failed"
    await _deliver(client, _event("checkout.session.expired", first, n=2))
    assert (await Purchase.objects().get(Purchase.id == first.id)).status == "failed"
    assert await Entry.count() == 0


async def test_events_that_are_not_ours_are_acknowledged(client: AsyncClient) -> None:
    purchase = await _purchase()
    stranger = _event("checkout.session.completed", purchase)
    stranger["data"]["object"]["client_reference_id"] = "someone-else"
    other_type = {
        "id": "evt_other",
        "object": "event",
        "type": "customer.created",
        "data": {"object": {}},
    }
    assert (await _deliver(client, stranger)).status_code == 200
    assert (await _deliver(client, other_type)).status_code == 200
    assert await Entry.count() == 0 and await StripeEvent.count() == 2


def _charge(
    purchase: Purchase,
    refunded: int,
    n: int,
    *,
    amount: int | None = None,
    currency: str | None = None,
) -> dict[str, Any]:
    """`charge.refunded` for the purchase's charge (in the purchase's currency unless said)."""
    return {
        "id": f"evt_refund_{purchase.id}_{n}",
        "object": "event",
        "type": "charge.refunded",
        "data": {
            "object": {
                "object": "charge",
                "id": f"ch_{purchase.id}",
                "payment_intent": f"pi_{purchase.id}",
                "amount": purchase.price_minor if amount is None else amount,
                "currency": (currency or purchase.currency).lower(),
                "amount_refunded": refunded,
            }
        },
    }


async def _paid(client: AsyncClient) -> Purchase:
    purchase = await _purchase()
    await _deliver(client, _event("checkout.session.completed", purchase))
    return await Purchase.objects().get(Purchase.id == purchase.id)


async def test_refunds_are_cumulative_and_take_back_the_unused_share(client: AsyncClient) -> None:
    purchase = await _paid(client)  # 10 credits for 420 €
    await _deliver(client, _charge(purchase, 126_00, 1))  # 30 % refunded -> 3 credits back
    assert await _balance(purchase) == 7
    await _deliver(client, _charge(purchase, 126_00, 1))  # the same event again
    await _deliver(client, _charge(purchase, 84_00, 0))  # an older one, arriving late
    assert await _balance(purchase) == 7
    await _deliver(client, _charge(purchase, 420_00, 2))  # then all of it
    assert await _balance(purchase) == 0
    stored = await Purchase.objects().get(Purchase.id == purchase.id)
    assert (stored.refunded_minor, stored.refund_credits, stored.refund_shortfall) == (
        420_00,
        10,
        0,
    )
    refunds = await Event.select(Event.data).where(Event.kind == "purchase.refunded")
    assert [json.loads(e["data"])["credits"] for e in refunds] == [3, 7]  # the repeats: none


async def test_a_refund_of_used_credits_records_the_shortfall(client: AsyncClient) -> None:
    purchase = await _paid(client)
    wallet = await Wallet.objects().get(Wallet.client == purchase.client)
    held = await ledger.hold(wallet_id=wallet.id, amount=6, reference="booking:1")
    await ledger.capture(wallet_id=wallet.id, hold_id=held.id)
    await _deliver(client, _charge(purchase, 420_00, 1))
    stored = await Purchase.objects().get(Purchase.id == purchase.id)
    assert (stored.refund_credits, stored.refund_shortfall) == (10, 6)
    assert await _balance(purchase) == 0

    # The expert sees the purchase, what was refunded and the shortfall.
    await _purchase_by("late@example.org")  # another client, who has not paid yet
    await login(client, "expert@example.org")
    page = (await client.get("/expert/clients")).text
    rows = re.findall(r"<tr>(.*?)</tr>", page.split('id="purchases"')[1], flags=re.S)
    assert len(rows) == 3  # the header and two purchases, newest first
    assert "late@example.org" in rows[1] and "en attente de paiement" in rows[1]
    assert "c@example.org" in rows[2] and "payé" in rows[2] and "Essentiel" in rows[2]
    assert "420,00\u00a0€ remboursés, 4 crédits repris" in rows[2]
    assert "Manque\u202f: 6 crédits n’ont pas pu être repris" in rows[2]
    assert "Payé, remboursements déduits\u202f: <strong>0,00\u00a0€</strong>" in page


def _dispute(
    purchase: Purchase,
    event_type: str,
    status: str,
    n: int,
    *,
    dispute_id: str = "dp_1",
    payment_intent: bool = True,
) -> dict[str, Any]:
    """A dispute event on the purchase's charge; without `payment_intent` as in Stripe's own
    fixture (`"payment_intent": null`), only the charge names the payment."""
    return {
        "id": f"evt_dispute_{n}",
        "object": "event",
        "type": event_type,
        "data": {
            "object": {
                "object": "dispute",
                "id": dispute_id,
                "status": status,
                "charge": f"ch_{purchase.id}",
                "payment_intent": f"pi_{purchase.id}" if payment_intent else None,
                "amount": purchase.price_minor,
                "currency": purchase.currency.lower(),
            }
        },
    }


def _charge_succeeded(purchase: Purchase) -> dict[str, Any]:
    event = _charge(purchase, 0, 0)
    event["id"], event["type"] = f"evt_charge_{purchase.id}", "charge.succeeded"
    return event


async def test_a_dispute_takes_credits_back_until_it_is_won(client: AsyncClient) -> None:
    purchase = await _paid(client)
    await _deliver(client, _dispute(purchase, "charge.dispute.created", "needs_response", 1))
    assert await _balance(purchase) == 0
    await _deliver(client, _dispute(purchase, "charge.dispute.closed", "won", 2))
    await _deliver(client, _dispute(purchase, "charge.dispute.closed", "won", 3))  # told twice
    assert await _balance(purchase) == 10


async def test_an_inquiry_closed_without_chargeback_gives_the_credits_back(
    client: AsyncClient,
) -> None:
    purchase = await _paid(client)
    await _deliver(
        client, _dispute(purchase, "charge.dispute.created", "warning_needs_response", 1)
    )
    assert await _balance(purchase) == 0
    await _deliver(client, _dispute(purchase, "charge.dispute.closed", "warning_closed", 2))
    assert await _balance(purchase) == 10
    stored = await Purchase.objects().get(Purchase.id == purchase.id)
    assert stored.disputed_credits == 0


@pytest.mark.parametrize("order", ["charge first", "session first", "dispute first"])
async def test_a_dispute_without_payment_intent_is_found_by_its_charge(
    client: AsyncClient, order: str
) -> None:
    """The charge is learnt from `charge.*` events, which may come before or after the
    session's; a dispute that arrives before anything names its charge waits for it."""
    purchase = await _purchase()
    paid = _event("checkout.session.completed", purchase)
    created = _dispute(
        purchase, "charge.dispute.created", "needs_response", 1, payment_intent=False
    )
    events = {
        "charge first": [_charge_succeeded(purchase), paid, created],
        "session first": [paid, _charge_succeeded(purchase), created],
        "dispute first": [created, paid, _charge_succeeded(purchase)],
    }[order]
    for event in events:
        assert (await _deliver(client, event)).status_code == 200
    assert await _balance(purchase) == 0
    stored = await Purchase.objects().get(Purchase.id == purchase.id)
    assert (stored.charge, stored.disputed_credits) == (f"ch_{purchase.id}", 10)
    closed = _dispute(purchase, "charge.dispute.closed", "won", 2, payment_intent=False)
    await _deliver(client, closed)
    assert await _balance(purchase) == 10


async def test_a_refund_names_the_charge_of_the_purchase(client: AsyncClient) -> None:
    purchase = await _paid(client)
    await _deliver(client, _charge(purchase, 42_00, 1))  # 10 % refunded: 1 credit
    stored = await Purchase.objects().get(Purchase.id == purchase.id)
    assert stored.charge == f"ch_{purchase.id}"
    await _deliver(
        client,
        _dispute(purchase, "charge.dispute.created", "needs_response", 2, payment_intent=False),
    )
    assert await _balance(purchase) == 0


async def test_a_second_dispute_on_a_settled_charge_changes_nothing(client: AsyncClient) -> None:
    purchase = await _paid(client)
    await _deliver(client, _dispute(purchase, "charge.dispute.created", "needs_response", 1))
    await _deliver(client, _dispute(purchase, "charge.dispute.closed", "won", 2))
    assert await _balance(purchase) == 10
    # The first dispute told again as new, then another dispute of the same charge.
    await _deliver(client, _dispute(purchase, "charge.dispute.created", "needs_response", 3))
    again = {"dispute_id": "dp_2"}
    await _deliver(
        client, _dispute(purchase, "charge.dispute.created", "needs_response", 4, **again)
    )
    await _deliver(client, _dispute(purchase, "charge.dispute.closed", "lost", 5, **again))
    assert await _balance(purchase) == 10
    stored = await Purchase.objects().get(Purchase.id == purchase.id)
    assert stored.disputed_credits == 0
    refunds = await Entry.count().where(Entry.kind == "refund")
    assert refunds == 1  # the first dispute's, given back since


async def test_a_lost_dispute_keeps_the_credits_and_says_so(client: AsyncClient) -> None:
    purchase = await _paid(client)
    await _deliver(client, _dispute(purchase, "charge.dispute.created", "needs_response", 1))
    await _deliver(client, _dispute(purchase, "charge.dispute.closed", "lost", 2))
    await _deliver(client, _dispute(purchase, "charge.dispute.closed", "won", 3))  # contradicts
    assert await _balance(purchase) == 0
    stored = await Purchase.objects().get(Purchase.id == purchase.id)
    assert stored.disputed_credits == 0  # settled: no longer "until the dispute is settled"


async def test_credits_given_back_after_a_dispute_can_be_refunded(client: AsyncClient) -> None:
    """Won, the credits return to the purchase's lot: a refund afterwards finds them."""
    purchase = await _paid(client)
    await _deliver(client, _dispute(purchase, "charge.dispute.created", "needs_response", 1))
    await _deliver(client, _dispute(purchase, "charge.dispute.closed", "won", 2))
    await _deliver(client, _charge(purchase, 420_00, 3))
    assert await _balance(purchase) == 0
    stored = await Purchase.objects().get(Purchase.id == purchase.id)
    assert (stored.refund_credits, stored.refund_shortfall) == (10, 0)


@pytest.mark.parametrize(
    ("refunded", "closing", "left"),
    [(420_00, "warning_closed", 0), (210_00, "won", 5), (420_00, "lost", 0)],
)
async def test_a_refund_while_a_dispute_holds_the_credits_is_not_given_back(
    client: AsyncClient, refunded: int, closing: str, left: int
) -> None:
    """Stripe allows a refund during an inquiry: the credits the inquiry took pay for the
    refund, and only the rest comes back when it closes in the client's favour."""
    purchase = await _paid(client)
    opened = _dispute(purchase, "charge.dispute.created", "warning_needs_response", 1)
    await _deliver(client, opened)
    await _deliver(client, _charge(purchase, refunded, 2))
    opened["id"] = "evt_dispute_again"  # told again after the refund: takes nothing more
    await _deliver(client, opened)
    assert await _balance(purchase) == 0
    await _deliver(client, _dispute(purchase, "charge.dispute.closed", closing, 3))
    assert await _balance(purchase) == left
    stored = await Purchase.objects().get(Purchase.id == purchase.id)
    refund_credits = 10 * refunded // 420_00
    assert (stored.refund_credits, stored.refund_shortfall) == (refund_credits, 0)
    assert stored.disputed_credits == 0
    assert not await verify_all()


async def test_a_dispute_opened_before_disputes_were_kept_is_settled(client: AsyncClient) -> None:
    """A dispute opened under the earlier rule (credits taken under `dispute:purchase:<id>`,
    no dispute row) gives them back when it is won."""
    purchase = await _paid(client)
    wallet = await Wallet.objects().get(Wallet.client == purchase.client)
    await ledger.refund(
        wallet_id=wallet.id,
        lot_id=purchase.lot,
        credits=purchase.credits,
        key=f"dispute:purchase:{purchase.id}",
        reference=f"purchase:{purchase.id}",
    )
    await Purchase.update({Purchase.disputed_credits: 10}).where(Purchase.id == purchase.id)
    await _deliver(client, _dispute(purchase, "charge.dispute.closed", "won", 1))
    assert await _balance(purchase) == 10
    stored = await Purchase.objects().get(Purchase.id == purchase.id)
    assert stored.disputed_credits == 0
    assert not await verify_all()


MISMATCHES = {
    "another session": {"id": "cs_test_someone_elses"},
    "one cent": {"amount_total": 1},
    "dollars": {"currency": "usd"},
    "no amount": {"amount_total": None},
    "amount as text": {"amount_total": "42000"},
    "amount true": {"amount_total": True},
    "converted from too little": {
        "amount_total": 68_000,
        "currency": "jpy",
        "currency_conversion": {"amount_total": 100, "source_currency": "eur", "fx_rate": "680"},
    },
    "converted from dollars": {
        "amount_total": 68_000,
        "currency": "jpy",
        "currency_conversion": {"amount_total": 420_00, "source_currency": "usd"},
    },
}


async def _expert_page(client: AsyncClient) -> list[str]:
    await login(client, "expert@example.org")
    page = (await client.get("/expert/clients")).text
    return re.findall(r"<tr>(.*?)</tr>", page.split('id="purchases"')[1], flags=re.S)


@pytest.mark.parametrize("problem", MISMATCHES)
async def test_a_payment_that_does_not_match_its_purchase_grants_nothing(
    client: AsyncClient, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    purchase = await _purchase()
    wrong = _event("checkout.session.completed", purchase, n=1, **MISMATCHES[problem])
    response = await _deliver(client, wrong)
    assert response.status_code == 200
    assert await _balance(purchase) == 0 and await Entry.count() == 0
    assert await StripeEvent.count() == 1
    stored = await Purchase.objects().get(Purchase.id == purchase.id)
    assert stored.status == PurchaseStatus.pending.value
    assert stored.mismatch is not None and wrong["id"] in stored.mismatch
    assert any(r.levelname == "WARNING" and wrong["id"] in r.getMessage() for r in caplog.records)
    (_header, row) = await _expert_page(client)
    assert "Paiement non conforme" in row

    # The real payment, arriving afterwards, is still granted, once.
    await _deliver(client, _event("checkout.session.completed", purchase, n=2))
    await _deliver(client, _event("checkout.session.async_payment_succeeded", purchase, n=3))
    assert await _balance(purchase) == 10


async def test_a_mismatch_after_the_payment_leaves_the_purchase_clean(
    client: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A Payment Link naming a purchase already paid: logged, nothing noted on it."""
    purchase = await _paid(client)
    other = _event("checkout.session.completed", purchase, n=9, id="cs_test_someone_elses")
    assert (await _deliver(client, other)).status_code == 200
    assert any(other["id"] in r.getMessage() for r in caplog.records)
    stored = await Purchase.objects().get(Purchase.id == purchase.id)
    assert (stored.status, stored.mismatch) == (PurchaseStatus.paid.value, None)
    assert await _balance(purchase) == 10
    (_header, row) = await _expert_page(client)
    assert "Paiement non conforme" not in row


async def test_adaptive_pricing_pays_in_the_customers_currency(client: AsyncClient) -> None:
    """With Adaptive Pricing the customer pays 68,000 JPY; Stripe says what it is in euros."""
    purchase = await _purchase()
    converted = {
        "amount_total": 68_000,
        "currency": "jpy",
        "currency_conversion": {
            "amount_subtotal": 420_00,
            "amount_total": 420_00,
            "fx_rate": "161.9",
            "source_currency": "eur",
        },
    }
    await _deliver(client, _event("checkout.session.completed", purchase, **converted))
    assert await _balance(purchase) == 10
    stored = await Purchase.objects().get(Purchase.id == purchase.id)
    assert stored.status == PurchaseStatus.paid.value and stored.mismatch is None


async def test_a_session_never_recorded_is_recognised_by_its_metadata(
    client: AsyncClient,
) -> None:
    """The portal created the session but died before writing its id down: the metadata,
    which only the portal can set, names the purchase."""
    purchase = await _purchase()
    await Purchase.update({Purchase.checkout_session: None}).where(Purchase.id == purchase.id)
    stranger = _event("checkout.session.completed", purchase, n=1, metadata={})
    await _deliver(client, stranger)  # a Payment Link given ?client_reference_id=<id>
    assert await _balance(purchase) == 0
    await _deliver(client, _event("checkout.session.completed", purchase, n=2))
    assert await _balance(purchase) == 10
    stored = await Purchase.objects().get(Purchase.id == purchase.id)
    assert stored.checkout_session == f"cs_test_{purchase.id}"  # written down now


async def test_a_refund_in_the_customers_currency_takes_back_its_share(
    client: AsyncClient,
) -> None:
    """Paid 68,000 JPY for a 420 € pack (Adaptive Pricing): the charge and its refunds are in
    yen. Half the charge refunded is half the credits, whatever the euro price."""
    purchase = await _purchase()
    converted = {
        "amount_total": 68_000,
        "currency": "jpy",
        "currency_conversion": {"amount_total": 420_00, "source_currency": "eur"},
    }
    await _deliver(client, _event("checkout.session.completed", purchase, **converted))
    await _deliver(client, _charge(purchase, 34_000, 1, amount=68_000, currency="jpy"))
    assert await _balance(purchase) == 5
    await _deliver(client, _charge(purchase, 47_600, 2, amount=68_000, currency="jpy"))  # 70 %
    assert await _balance(purchase) == 3
    stored = await Purchase.objects().get(Purchase.id == purchase.id)
    assert (stored.refunded_minor, stored.refund_currency, stored.refund_credits) == (
        47_600,
        "JPY",
        7,
    )
    (_header, row) = await _expert_page(client)
    assert "47\u202f600\u00a0JPY remboursés, 7 crédits repris" in row
    page = (await client.get("/expert/clients")).text
    # 30 % of the price kept: 126 € net of refunds.
    assert "Payé, remboursements déduits\u202f: <strong>126,00\u00a0€</strong>" in page


async def _deliver_text(client: AsyncClient, body: str) -> Any:
    """Any text, signed as Stripe signs: valid signature, whatever the content."""
    header = stripe.WebhookSignature.generate_signature_header(body, SECRET)
    return await client.post(
        "/webhooks/stripe",
        content=body.encode(),
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )


def _malformed(purchase: Purchase) -> dict[str, str]:
    """Signed bodies whose content is not what Stripe sends, each about the paid purchase."""

    def event(n: int, event_type: str, obj: Any, **envelope: Any) -> str:
        return json.dumps(
            {"id": f"evt_bad_{n}", "object": "event", "type": event_type, "data": {"object": obj}}
            | envelope
        )

    def refund(**fields: Any) -> dict[str, Any]:
        return _charge(purchase, 420_00, 0)["data"]["object"] | fields

    def session(**fields: Any) -> dict[str, Any]:
        return _event("checkout.session.completed", purchase)["data"]["object"] | fields

    def dispute(**fields: Any) -> dict[str, Any]:
        created = _dispute(purchase, "charge.dispute.created", "needs_response", 0)
        return created["data"]["object"] | fields

    return {
        "refund as text": event(1, "charge.refunded", refund(amount_refunded="42000")),
        "refund not a number": event(2, "charge.refunded", refund(amount_refunded="abc")),
        "refund with cents": event(3, "charge.refunded", refund(amount_refunded=4.2)),
        "refund beyond the charge": event(4, "charge.refunded", refund(amount_refunded=10**6)),
        "refund huge": event(5, "charge.refunded", refund(amount=10**40, amount_refunded=10**40)),
        "refund of nothing": event(6, "charge.refunded", refund(amount=0)),
        "refund currency": event(7, "charge.refunded", refund(currency=["eur"])),
        "refund intent": event(8, "charge.refunded", refund(payment_intent={"id": "pi"})),
        "refund long intent": event(9, "charge.refunded", refund(payment_intent="pi" * 5000)),
        "refund NUL intent": event(10, "charge.refunded", refund(payment_intent="pi_\x00")),
        "no data": json.dumps({"id": "evt_bad_11", "type": "charge.refunded"}),
        "data.object a list": event(12, "charge.refunded", [refund()]),
        "data.object null": event(13, "checkout.session.completed", None),
        "object kind a list": event(14, "charge.refunded", refund(object=["charge"])),
        "huge reference": event(
            15, "checkout.session.completed", session(client_reference_id=10**40)
        ),
        "long reference": event(
            16, "checkout.session.completed", session(client_reference_id="9" * 10_000)
        ),
        "big reference": event(
            17, "checkout.session.completed", session(client_reference_id=str(10**40))
        ),
        "paid flag a list": event(
            18, "checkout.session.completed", session(payment_status=["paid"])
        ),
        "intent an object": event(19, "checkout.session.completed", session(payment_intent={})),
        "metadata text": event(20, "checkout.session.completed", session(metadata="purchase_id")),
        "conversion a list": event(
            21, "checkout.session.completed", session(currency_conversion=[1, 2])
        ),
        "dispute id object": event(23, "charge.dispute.created", dispute(id={"id": "dp"})),
        "dispute status list": event(24, "charge.dispute.created", dispute(status=["lost"])),
        "dispute closed oddly": event(25, "charge.dispute.closed", dispute(status="pending")),
        "dispute NUL status": event(26, "charge.dispute.created", dispute(status="lost\x00")),
        "dispute no charge": event(27, "charge.dispute.created", dispute(charge=None)),
        "event id an object": event(28, "charge.refunded", refund(), id={"evt": 1}),
        "event id too long": event(29, "charge.refunded", refund(), id="evt_" + "x" * 10_000),
        "event type a list": event(30, "charge.refunded", refund(), type=["charge.refunded"]),
        "event id with NUL": event(31, "charge.refunded", refund(), id="evt_\x00"),
        "a list": json.dumps([1, 2, 3]),
        "not JSON": "not json at all",
        "NUL in the body": '{"id": "evt_bad_32", "type": "charge.refunded\x00"}',
        "deep": "[" * 100_000 + "]" * 100_000,
        "huge number": '{"id": "evt_bad_33", "type": "x", "n": ' + "9" * 10_000 + "}",
        "NaN": event(34, "charge.refunded", refund(amount_refunded=float("nan"))),
    }


async def test_signed_but_malformed_events_are_stored_and_acknowledged(
    client: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Stripe retries for three days whatever is not answered 2xx: a signed event that
    cannot be applied is kept, logged and acknowledged, and changes nothing."""
    purchase = await _paid(client)
    entries = await Entry.count()
    bodies = _malformed(purchase)
    caplog.set_level(logging.INFO, logger="portal")
    for problem, body in bodies.items():
        caplog.clear()
        response = await _deliver_text(client, body)
        assert response.status_code == 200, (problem, response.text)
        assert any(r.name.startswith("portal.credits") for r in caplog.records), problem
    assert await StripeEvent.count() == 1 + len(bodies)  # the payment, then each of them
    assert await Entry.count() == entries and await _balance(purchase) == 10
    stored = await Purchase.objects().get(Purchase.id == purchase.id)
    assert (stored.refunded_minor, stored.refund_credits, stored.disputed_credits) == (0, 0, 0)
    assert stored.charge is None and stored.mismatch is None
    # Each again: nothing new stored, still 200.
    for body in bodies.values():
        assert (await _deliver_text(client, body)).status_code == 200
    assert await StripeEvent.count() == 1 + len(bodies)
