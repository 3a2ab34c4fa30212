"""Buying a credit pack: confirm, pay (Stripe Checkout or the local test checkout), then a
page that follows the payment until the credits are there."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromQuery
from litestar.response import Redirect

from portal.accounts.selectors import expert_get
from portal.charter.services import expert_by_slug, pack_of, version_current
from portal.charter.tables import CreditPack
from portal.credits import ledger
from portal.credits.checkout import (
    TEST_OUTCOMES,
    PaymentsUnavailable,
    stripe_checkout_url,
    test_checkout_complete,
    test_session,
)
from portal.credits.purchases import purchase_of, purchase_start
from portal.credits.tables import Purchase, PurchaseStatus
from portal.errors import N_, NotFound, ValidationFailed
from portal.params import PathId, Slug
from portal.routes.forms import Form, field, see_other
from portal.settings import Settings
from portal.web.auth import current_user, login_required
from portal.web.deps import SettingsDep
from portal.web.redirects import safe_next
from portal.web.render import render


async def _pack(slug: str, pack_id: int) -> tuple[Any, CreditPack, Any]:
    expert = await expert_by_slug(slug)
    pack = await pack_of(expert=expert, pack_id=pack_id)
    current = await version_current(expert=expert)
    if not pack.active or current is None:
        raise NotFound(N_("This credit pack is not on sale."))
    return expert, pack, current


@get(
    "/e/{slug:str}/buy/{pack_id:int}",
    name="buy_pack",
    guards=[login_required],
    include_in_schema=False,
)
async def buy_page(
    request: Request[Any, Any, Any], slug: Slug, pack_id: PathId, next: FromQuery[str] = ""
) -> Response[Any]:
    """`next`: where the client came from (a chosen slot): the receipt leads back there."""
    expert, pack, current = await _pack(slug, pack_id)
    return render(
        request,
        "pages/purchase/confirm.html",
        expert=expert,
        pack=pack,
        version=current,
        next_path=safe_next(next[:2000], ""),
    )


@post(
    "/e/{slug:str}/buy/{pack_id:int}",
    name="buy_pack_submit",
    guards=[login_required],
    include_in_schema=False,
)
async def buy_submit(
    request: Request[Any, Any, Any],
    slug: Slug,
    pack_id: PathId,
    settings: SettingsDep,
    data: Form,
) -> Response[Any]:
    user = current_user(request)
    assert user is not None
    expert, _sold, _version = await _pack(slug, pack_id)
    payments_ready(settings)
    next_path = safe_next(field(data, "next", 2000), "")
    purchase = await purchase_start(
        client_id=user.id, expert=expert, pack_id=pack_id, next_path=next_path
    )
    return Redirect(await checkout_url(request, settings, purchase, slug), status_code=303)


def payments_ready(settings: Settings) -> None:
    """Refuse, before anything is recorded, to sell what this portal cannot take payment for:
    no Stripe key, and the test checkout not enabled (TEST_CHECKOUT or DEMO)."""
    if not settings.stripe_secret_key and not settings.test_checkout_open:
        raise PaymentsUnavailable()


async def checkout_url(
    request: Request[Any, Any, Any], settings: Settings, purchase: Purchase, slug: str
) -> str:
    """Where to pay for this purchase: Stripe Checkout, or the test checkout when enabled
    and without a Stripe key."""
    payments_ready(settings)
    if not settings.stripe_secret_key:
        await test_session(purchase)
        return request.app.route_reverse("test_checkout", purchase_id=purchase.id)
    status_path = request.app.route_reverse("purchase_status", purchase_id=purchase.id)
    return await stripe_checkout_url(
        purchase=purchase,
        api_key=settings.stripe_secret_key,
        api_base=settings.stripe_api_base,
        success_url=settings.base_url + status_path,
        cancel_url=settings.base_url + request.app.route_reverse("expert_public", slug=slug),
    )


@get(
    "/checkout/test/{purchase_id:int}",
    name="test_checkout",
    guards=[login_required],
    include_in_schema=False,
)
async def test_checkout_page(
    request: Request[Any, Any, Any], purchase_id: PathId, settings: SettingsDep
) -> Response[Any]:
    if not settings.test_checkout_open:
        raise NotFound()
    user = current_user(request)
    assert user is not None
    purchase = await purchase_of(client_id=user.id, purchase_id=purchase_id)
    return render(request, "pages/purchase/test_checkout.html", purchase=purchase)


@post(
    "/checkout/test/{purchase_id:int}",
    name="test_checkout_submit",
    guards=[login_required],
    include_in_schema=False,
)
async def test_checkout_submit(
    request: Request[Any, Any, Any], purchase_id: PathId, data: Form, settings: SettingsDep
) -> Response[Any]:
    if not settings.test_checkout_open:  # real payments only, or none
        raise NotFound()
    user = current_user(request)
    assert user is not None
    purchase = await purchase_of(client_id=user.id, purchase_id=purchase_id)
    outcome = field(data, "outcome", 10)
    if outcome not in TEST_OUTCOMES:
        raise ValidationFailed({"outcome": N_("Choose an outcome.")})
    await test_checkout_complete(purchase=purchase, outcome=outcome, secret=settings.webhook_secret)
    return see_other(request.app.route_reverse("purchase_status", purchase_id=purchase.id))


@get(
    "/me/purchases/{purchase_id:int}",
    name="purchase_status",
    guards=[login_required],
    include_in_schema=False,
)
async def purchase_status(request: Request[Any, Any, Any], purchase_id: PathId) -> Response[Any]:
    """ "Payment being confirmed" until the webhook has granted the credits, then a receipt.
    The pending page polls itself (htmx) and stops once the purchase is settled."""
    user = current_user(request)
    assert user is not None
    purchase = await purchase_of(client_id=user.id, purchase_id=purchase_id)
    wallet = await ledger.wallet_for(client_id=user.id, expert_id=purchase.expert)
    expert = await expert_get(expert_id=purchase.expert)
    settled = purchase.status not in (PurchaseStatus.pending.value, PurchaseStatus.processing.value)
    return render(
        request,
        "pages/purchase/status.html",
        block="status",
        purchase=purchase,
        expert=expert,
        available=wallet.available,
        settled=settled,
    )


ROUTES = [buy_page, buy_submit, test_checkout_page, test_checkout_submit, purchase_status]
