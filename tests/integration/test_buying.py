"""Buying a pack from the charter page: confirmation, the test checkout (no Stripe key) or
Stripe Checkout through the real SDK against a local stub of its API, then the page that
follows the payment."""

from __future__ import annotations

import html
import json
import os
import re
from dataclasses import replace
from urllib.parse import parse_qs, quote, urlsplit

from httpx import AsyncClient

from portal.accounts.tables import Expert, User
from portal.app import create_app
from portal.charter.tables import CreditPack
from portal.credits.tables import Purchase, PurchaseStatus, StripeEvent, Wallet
from portal.settings import get_settings, load_settings
from tests.integration.conftest import running
from tests.stripe_stub import StripeStub
from tests.support import login, make_published_expert, make_user, next_monday_at, post_form


async def _setup() -> CreditPack:
    await make_user("c@example.org")
    expert = await make_published_expert(packs=(("Essentiel", 10, 420_00),))
    return await CreditPack.objects().get(CreditPack.expert == expert.id)


async def test_buying_through_the_test_checkout(client: AsyncClient) -> None:
    pack = await _setup()
    await login(client, "c@example.org")
    charter = (await client.get("/e/alice-expert")).text
    assert f'href="/e/alice-expert/buy/{pack.id}"' in charter
    confirm = await client.get(f"/e/alice-expert/buy/{pack.id}")
    assert "vous acceptez la version 1 de la charte de Alice Expert" in confirm.text
    assert "Payer 420,00\u00a0€" in confirm.text
    first = await post_form(
        client, f"/e/alice-expert/buy/{pack.id}", {}, from_page=f"/e/alice-expert/buy/{pack.id}"
    )
    second = await post_form(
        client, f"/e/alice-expert/buy/{pack.id}", {}, from_page=f"/e/alice-expert/buy/{pack.id}"
    )
    assert first.status_code == 303 and first.headers["location"] == second.headers["location"]
    assert await Purchase.count() == 1  # a double click buys once
    purchase = await Purchase.objects().first()
    assert purchase is not None
    checkout = (await client.get(first.headers["location"])).text
    assert "Paiement de test — aucun paiement réel." in checkout

    pending = await client.get(f"/me/purchases/{purchase.id}", headers={"HX-Request": "true"})
    assert "Paiement en cours de confirmation" in pending.text
    assert 'hx-trigger="load delay:1s"' in pending.text and "<html" not in pending.text

    paid = await post_form(
        client,
        f"/checkout/test/{purchase.id}",
        {"outcome": "pay"},
        from_page=first.headers["location"],
    )
    assert paid.headers["location"] == f"/me/purchases/{purchase.id}"
    receipt = await client.get(f"/me/purchases/{purchase.id}", headers={"HX-Request": "true"})
    assert "10 crédits ajoutés à votre solde chez Alice Expert." in receipt.text
    assert "hx-trigger" not in receipt.text  # settled: the page stops polling
    wallet = await Wallet.objects().first()
    assert wallet is not None and wallet.available == 10
    # Its event names the session the test checkout recorded, and the purchase in metadata.
    paid_purchase = await Purchase.objects().get(Purchase.id == purchase.id)
    assert paid_purchase.checkout_session == f"cs_local_{purchase.id}"
    event = json.loads((await StripeEvent.objects().first()).payload)  # type: ignore[union-attr]
    session = event["data"]["object"]
    assert session["id"] == f"cs_local_{purchase.id}"
    assert session["metadata"] == {"purchase_id": str(purchase.id)}


async def test_a_failed_test_payment_adds_nothing(client: AsyncClient) -> None:
    pack = await _setup()
    await login(client, "c@example.org")
    started = await post_form(
        client, f"/e/alice-expert/buy/{pack.id}", {}, from_page=f"/e/alice-expert/buy/{pack.id}"
    )
    purchase = await Purchase.objects().first()
    assert purchase is not None
    await post_form(
        client,
        f"/checkout/test/{purchase.id}",
        {"outcome": "fail"},
        from_page=started.headers["location"],
    )
    page = (await client.get(f"/me/purchases/{purchase.id}")).text
    assert "Le paiement n’a pas abouti" in page
    assert (await Purchase.objects().get(Purchase.id == purchase.id)).status == "failed"
    assert await Wallet.count() == 0 or (await Wallet.objects().first()).available == 0  # type: ignore[union-attr]


async def test_someone_elses_purchase_and_archived_packs(client: AsyncClient) -> None:
    pack = await _setup()
    await login(client, "c@example.org")
    await post_form(
        client, f"/e/alice-expert/buy/{pack.id}", {}, from_page=f"/e/alice-expert/buy/{pack.id}"
    )
    purchase = await Purchase.objects().first()
    assert purchase is not None
    await post_form(client, "/logout", {}, from_page="/me")
    await make_user("other@example.org")
    await login(client, "other@example.org")
    assert (await client.get(f"/me/purchases/{purchase.id}")).status_code == 404
    assert (await client.get(f"/checkout/test/{purchase.id}")).status_code == 404
    await CreditPack.update({CreditPack.active: False}).where(CreditPack.id == pack.id)
    assert (await client.get(f"/e/alice-expert/buy/{pack.id}")).status_code == 404


async def test_stripe_checkout_through_the_real_sdk(stripe_stub: StripeStub) -> None:
    pack = await _setup()
    settings = replace(
        get_settings(), stripe_secret_key="sk_test_portal", stripe_api_base=stripe_stub.url
    )
    async with running(create_app(settings)) as client:
        await login(client, "c@example.org")
        response = await post_form(
            client, f"/e/alice-expert/buy/{pack.id}", {}, from_page=f"/e/alice-expert/buy/{pack.id}"
        )
        assert response.status_code == 303
        purchase = await Purchase.objects().first()
        assert purchase is not None
        stripe_url = f"https://checkout.stripe.test/pay/cs_test_{purchase.id}"
        assert response.headers["location"] == stripe_url
        faked = await post_form(
            client,
            f"/checkout/test/{purchase.id}",
            {"outcome": "pay"},
            from_page=f"/e/alice-expert/buy/{pack.id}",
        )
        assert faked.status_code == 404  # with real payments, no test checkout
    purchase = await Purchase.objects().first()
    assert purchase is not None and purchase.checkout_session == f"cs_test_{purchase.id}"
    assert purchase.status == PurchaseStatus.pending.value
    (call,) = stripe_stub.calls
    assert call["idempotency_key"] == f"purchase-{purchase.id}"
    assert call["authorization"] == "Bearer sk_test_portal"
    assert f"client_reference_id={purchase.id}" in call["body"]
    assert re.search(r"unit_amount%5D=42000|unit_amount\]=42000", call["body"])


async def test_checkout_through_the_api(client: AsyncClient) -> None:
    from tests.support import PASSWORD

    pack = await _setup()
    token = (
        await client.post("/api/v1/tokens", json={"email": "c@example.org", "password": PASSWORD})
    ).json()
    headers = {"Authorization": f"Bearer {token['token']}"}
    created = await client.post(
        "/api/v1/experts/alice-expert/checkout", json={"pack_id": pack.id}, headers=headers
    )
    assert created.status_code == 201
    body = created.json()
    assert body["checkout_url"] == f"/checkout/test/{body['purchase_id']}"
    await CreditPack.update({CreditPack.active: False}).where(CreditPack.id == pack.id)
    archived = await client.post(
        "/api/v1/experts/alice-expert/checkout", json={"pack_id": pack.id}, headers=headers
    )
    assert archived.status_code == 409 and archived.json()["code"] == "pack_archived"
    missing = await client.post(
        "/api/v1/experts/alice-expert/checkout", json={"pack_id": 999}, headers=headers
    )
    assert missing.status_code == 404


async def test_without_stripe_nor_test_checkout_nothing_is_sold() -> None:
    """A production portal whose Stripe key is missing: the test checkout does not exist
    and buying says that payments are unavailable, in the viewer's language."""
    pack = await _setup()
    settings = load_settings({**os.environ, "TEST_CHECKOUT": "", "DEMO": ""})
    async with running(create_app(settings)) as client:
        await login(client, "c@example.org")
        buy = f"/e/alice-expert/buy/{pack.id}"
        refused = await post_form(client, buy, {}, from_page=buy)
        assert refused.status_code == 503
        assert "Les paiements ne sont pas disponibles" in refused.text
        assert await Purchase.count() == 0  # nothing recorded for a sale that cannot happen

        from tests.support import PASSWORD

        await User.update({User.locale: "en"}).where(User.email == "c@example.org")
        token = (
            await client.post(
                "/api/v1/tokens", json={"email": "c@example.org", "password": PASSWORD}
            )
        ).json()["token"]
        api = await client.post(
            "/api/v1/experts/alice-expert/checkout",
            json={"pack_id": pack.id},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert api.status_code == 503 and api.json()["code"] == "payments_unavailable"
        assert "Payments are not available" in api.json()["detail"]
        assert await Purchase.count() == 0

        # A purchase recorded anyhow (earlier, under another configuration) cannot be paid here.
        from portal.credits.purchases import purchase_start

        expert = await Expert.objects().get(Expert.slug == "alice-expert")
        user = await User.objects().get(User.email == "c@example.org")
        purchase = await purchase_start(client_id=user.id, expert=expert, pack_id=pack.id)
        assert (await client.get(f"/checkout/test/{purchase.id}")).status_code == 404
        paid = await post_form(
            client, f"/checkout/test/{purchase.id}", {"outcome": "pay"}, from_page=buy
        )
        assert paid.status_code == 404
    assert (await Purchase.objects().get(Purchase.id == purchase.id)).status == "pending"
    assert await Wallet.count() == 0


async def test_short_of_credits_a_slot_is_one_click_away_after_paying(client: AsyncClient) -> None:
    """From the confirmation of a slot the client cannot pay for: a pack, its payment, and
    the receipt leads back to that same confirmation, where one click books."""
    pack = await _setup()
    await login(client, "c@example.org")
    start = next_monday_at(10)
    confirm = (
        f"/e/alice-expert/book/confirm?channel=call&duration=30"
        f"&start={quote(start.isoformat())}&tz=Europe%2FParis"
    )
    short = (await client.get(confirm)).text
    link = re.search(rf'href="(/e/alice-expert/buy/{pack.id}\?next=[^"]+)"', short)
    assert link, short
    buy_url = html.unescape(link.group(1))
    back = parse_qs(urlsplit(buy_url).query)["next"][0]
    assert back.startswith("/e/alice-expert/book/confirm?")
    buy_page = (await client.get(buy_url)).text
    assert f'name="next" value="{html.escape(back)}"' in buy_page
    started = await post_form(
        client, f"/e/alice-expert/buy/{pack.id}", {"next": back}, from_page=buy_url
    )
    purchase = await Purchase.objects().first()
    assert purchase is not None and purchase.next_path == back
    await post_form(
        client,
        f"/checkout/test/{purchase.id}",
        {"outcome": "pay"},
        from_page=started.headers["location"],
    )
    receipt = (await client.get(f"/me/purchases/{purchase.id}")).text
    assert "Continuer là où vous étiez" in receipt and html.escape(back) in receipt
    again = (await client.get(back)).text
    assert "Confirmer la réservation" in again and 'name="start"' in again
    # Another site's address is never followed.
    away = await client.get(f"/e/alice-expert/buy/{pack.id}?next=https://evil.test/")
    assert 'name="next" value=""' in away.text
