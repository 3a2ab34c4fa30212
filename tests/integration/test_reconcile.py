"""The worker's credit jobs: the reconciler asks Stripe (the real SDK, against a local
stub of its API) about purchases still open after 30 minutes, and lots past their date
expire; both run from the real arq worker, and running them twice changes nothing."""

from __future__ import annotations

import copy
import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import stripe
from arq.connections import RedisSettings
from arq.worker import Worker

from portal.accounts.tables import Expert
from portal.charter.tables import CreditPack
from portal.credits import ledger
from portal.credits.purchases import event_receive, purchase_start
from portal.credits.reconcile import purchases_reconcile
from portal.credits.services import lots_expire
from portal.credits.tables import Entry, EntryKind, Lot, Purchase, PurchaseStatus, Wallet
from portal.settings import get_settings
from tests.stripe_stub import StripeStub
from tests.support import make_published_expert, make_user
from workers.settings import WorkerSettings

KEY = "sk_test_portal"


async def _expert() -> Expert:
    """The one expert of these tests (published, one 10-credit pack), made on first use."""
    expert = await Expert.objects().first()
    return expert or await make_published_expert(packs=(("Essentiel", 10, 420_00),))


async def _purchase(
    email: str = "c@example.org", age: timedelta = timedelta(minutes=40)
) -> Purchase:
    """A purchase made `age` ago, as if the client went to the checkout and we heard
    nothing since."""
    client, expert = await make_user(email), await _expert()
    pack = await CreditPack.objects().get(CreditPack.expert == expert.id)
    purchase = await purchase_start(client_id=client.id, expert=expert, pack_id=pack.id)
    await Purchase.update({Purchase.created_at: datetime.now(UTC) - age}).where(
        Purchase.id == purchase.id
    )
    return await Purchase.objects().get(Purchase.id == purchase.id)


async def _at_stripe(stub: StripeStub, purchase: Purchase, **session: object) -> None:
    """The purchase's Checkout Session at Stripe, as the portal created it (its price,
    currency and metadata), with `session` as Stripe now tells it."""
    created = {
        "amount_total": purchase.price_minor,
        "currency": purchase.currency.lower(),
        "metadata": {"purchase_id": str(purchase.id)},
    }
    session_id = stub.session(purchase.id, **(created | session))
    await Purchase.update({Purchase.checkout_session: session_id}).where(Purchase.id == purchase.id)


async def _state(purchase: Purchase) -> tuple[str, int]:
    """The purchase's status and the client's available credits (wallet checked)."""
    status = (await Purchase.objects().get(Purchase.id == purchase.id)).status
    wallet = await Wallet.objects().where(Wallet.client == purchase.client).first()
    if wallet is None:
        return status, 0
    assert await ledger.wallet_check(wallet_id=wallet.id) == []
    return status, wallet.available


async def test_a_lost_webhook_is_made_good_once(stripe_stub: StripeStub) -> None:
    purchase = await _purchase()
    recent = await _purchase("recent@example.org", age=timedelta(minutes=5))
    await _at_stripe(
        stripe_stub, purchase, status="complete", payment_status="paid", payment_intent="pi_1"
    )
    await _at_stripe(
        stripe_stub, recent, status="complete", payment_status="paid", payment_intent="pi_2"
    )
    report = await purchases_reconcile(api_key=KEY, api_base=stripe_stub.url)
    assert (report.checked, report.paid) == (1, 1)  # the recent one waits for its webhook
    assert await _state(purchase) == (PurchaseStatus.paid.value, 10)
    assert await _state(recent) == (PurchaseStatus.pending.value, 0)
    (call,) = stripe_stub.calls
    assert (
        call["method"] == "GET" and call["path"] == f"/v1/checkout/sessions/cs_test_{purchase.id}"
    )
    assert call["authorization"] == f"Bearer {KEY}"

    # Run again, then the lost webhook finally arrives: still one grant.
    assert (await purchases_reconcile(api_key=KEY, api_base=stripe_stub.url)).checked == 0
    body = json.dumps(
        {
            "id": "evt_late",
            "type": "checkout.session.completed",
            "data": {"object": stripe_stub.sessions[f"cs_test_{purchase.id}"]},
        }
    )
    secret = get_settings().webhook_secret
    header = stripe.WebhookSignature.generate_signature_header(
        body, secret, timestamp=int(time.time())
    )
    await event_receive(payload=body.encode(), signature=header, secret=secret)
    assert await _state(purchase) == (PurchaseStatus.paid.value, 10)
    grants = await Entry.count().where(Entry.kind == EntryKind.grant.value)
    assert grants == 1
    assert (await Purchase.objects().get(Purchase.id == purchase.id)).payment_intent == "pi_1"


async def test_expired_open_and_delayed_sessions(stripe_stub: StripeStub) -> None:
    expired = await _purchase("a@example.org")
    still_open = await _purchase("b@example.org")
    sepa = await _purchase("c@example.org")
    sepa_failed = await _purchase("d@example.org")
    await _at_stripe(stripe_stub, expired, status="expired")
    await _at_stripe(stripe_stub, still_open, status="open")
    await _at_stripe(stripe_stub, sepa, status="complete", payment_intent="pi_sepa")
    await _at_stripe(stripe_stub, sepa_failed, status="complete", payment_intent="pi_sepa_failed")
    stripe_stub.payment_intents["pi_sepa"] = {"id": "pi_sepa", "status": "processing"}
    stripe_stub.payment_intents["pi_sepa_failed"] = {
        "id": "pi_sepa_failed",
        "status": "requires_payment_method",
    }
    report = await purchases_reconcile(api_key=KEY, api_base=stripe_stub.url)
    assert (report.expired, report.unchanged, report.processing, report.failed) == (1, 1, 1, 1)
    assert await _state(expired) == (PurchaseStatus.expired.value, 0)
    assert await _state(still_open) == (PurchaseStatus.pending.value, 0)
    assert await _state(sepa) == (PurchaseStatus.processing.value, 0)
    assert await _state(sepa_failed) == (PurchaseStatus.failed.value, 0)

    # Days later the debit went through: the session still says unpaid, the payment does not.
    stripe_stub.payment_intents["pi_sepa"]["status"] = "succeeded"
    report = await purchases_reconcile(api_key=KEY, api_base=stripe_stub.url)
    assert (report.checked, report.paid) == (2, 1)
    assert await _state(sepa) == (PurchaseStatus.paid.value, 10)


async def test_stripe_down_loses_nothing(stripe_stub: StripeStub) -> None:
    purchase = await _purchase()
    await _at_stripe(stripe_stub, purchase, status="complete", payment_status="paid")
    stripe_stub.down = True
    report = await purchases_reconcile(api_key=KEY, api_base=stripe_stub.url)
    assert (report.checked, report.errors, report.paid) == (1, 1, 0)
    assert await _state(purchase) == (PurchaseStatus.pending.value, 0)
    stripe_stub.down = False
    report = await purchases_reconcile(api_key=KEY, api_base=stripe_stub.url)
    assert (report.errors, report.paid) == (0, 1)
    assert await _state(purchase) == (PurchaseStatus.paid.value, 10)


async def test_without_stripe_abandoned_purchases_expire_after_a_day() -> None:
    abandoned = await _purchase("a@example.org", age=timedelta(hours=26))
    hesitating = await _purchase("b@example.org", age=timedelta(hours=2))
    report = await purchases_reconcile(api_key=None)
    assert (report.checked, report.expired, report.unchanged) == (2, 1, 1)
    assert await _state(abandoned) == (PurchaseStatus.expired.value, 0)
    assert await _state(hesitating) == (PurchaseStatus.pending.value, 0)


async def _wallet(email: str) -> Wallet:
    client = await make_user(email)
    return await ledger.wallet_for(client_id=client.id, expert_id=(await _expert()).id)


async def test_lots_past_their_date_expire_once_across_wallets() -> None:
    now = datetime.now(UTC)
    first, second = await _wallet("a@example.org"), await _wallet("b@example.org")
    for wallet, (old, new) in ((first, (4, 6)), (second, (3, 0))):
        await ledger.grant(
            wallet_id=wallet.id,
            credits=old,
            expires_at=now - timedelta(minutes=1),
            reference="adjust:old",
            key=f"old:{wallet.id}",
        )
        if new:
            await ledger.grant(
                wallet_id=wallet.id,
                credits=new,
                expires_at=now + timedelta(days=90),
                reference="adjust:new",
                key=f"new:{wallet.id}",
            )
    # A hold meanwhile takes from the lot still valid, never from the expired one.
    held = await ledger.hold(wallet_id=first.id, amount=2, reference="booking:1")
    assert await lots_expire() == 4 + 3
    assert await lots_expire() == 0
    assert (await ledger.balance(wallet_id=first.id)).available == 4
    assert (await ledger.balance(wallet_id=second.id)).available == 0
    await ledger.release(wallet_id=first.id, hold_id=held.id)
    for wallet in (first, second):
        assert await ledger.wallet_check(wallet_id=wallet.id) == []
    assert await Entry.count().where(Entry.kind == EntryKind.expire.value) == 2
    assert await Lot.count().where(Lot.remaining > 0) == 1


async def test_the_worker_runs_both_jobs_at_start(stripe_stub: StripeStub) -> None:
    purchase = await _purchase()
    await _at_stripe(stripe_stub, purchase, status="complete", payment_status="paid")
    wallet = await _wallet("expiring@example.org")
    await ledger.grant(
        wallet_id=wallet.id,
        credits=5,
        expires_at=datetime.now(UTC) - timedelta(hours=1),
        reference="adjust:old",
        key="old",
    )
    settings = replace(get_settings(), stripe_secret_key=KEY, stripe_api_base=stripe_stub.url)
    options = {
        name: getattr(WorkerSettings, name)
        for name in ("functions", "on_startup", "on_shutdown", "poll_delay")
    }
    for _ in range(2):  # a second run (another worker, a restart) changes nothing
        worker = Worker(
            **options,
            cron_jobs=copy.deepcopy(WorkerSettings.cron_jobs),  # a new process's schedule
            redis_settings=RedisSettings.from_dsn(settings.redis_url or ""),
            ctx={"settings": settings},
            burst=True,
            handle_signals=False,
        )
        try:
            assert await worker.run_check() >= 3  # heartbeat, reconcile, expire
        finally:
            await worker.close()
    assert await _state(purchase) == (PurchaseStatus.paid.value, 10)
    assert (await ledger.balance(wallet_id=wallet.id)).available == 0
    assert await Entry.count().where(Entry.kind == EntryKind.expire.value) == 1


async def test_the_reconciler_grants_only_what_was_paid_in_full(stripe_stub: StripeStub) -> None:
    cheap = await _purchase("a@example.org")
    converted = await _purchase("b@example.org")
    dollars = await _purchase("c@example.org")
    paid = {"status": "complete", "payment_status": "paid"}
    await _at_stripe(stripe_stub, cheap, amount_total=1, **paid)
    await _at_stripe(
        stripe_stub,
        converted,
        amount_total=68_000,
        currency="jpy",
        currency_conversion={"amount_total": 420_00, "source_currency": "eur"},
        **paid,
    )
    await _at_stripe(stripe_stub, dollars, currency="usd", **paid)
    report = await purchases_reconcile(api_key=KEY, api_base=stripe_stub.url)
    assert (report.checked, report.paid, report.mismatched) == (3, 1, 2)
    assert await _state(converted) == (PurchaseStatus.paid.value, 10)
    for wrong in (cheap, dollars):  # its own session will never pay it: failed
        assert await _state(wrong) == (PurchaseStatus.failed.value, 0)
        stored = await Purchase.objects().get(Purchase.id == wrong.id)
        assert stored.mismatch is not None and f"cs_test_{wrong.id}" in stored.mismatch
    assert await Entry.count().where(Entry.kind == EntryKind.grant.value) == 1
