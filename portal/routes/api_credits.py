"""JSON API: the caller's wallets and their ledgers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Request, get, post
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody

from portal.charter.services import expert_by_slug
from portal.credits.presentation import change, what
from portal.credits.purchases import purchase_start
from portal.credits.services import WalletView, entries_of, wallet_of, wallets_of
from portal.params import JsonId, Slug
from portal.routes.api_charter import ERRORS, ErrorOut
from portal.routes.purchases import checkout_url, payments_ready
from portal.web.auth import current_user, login_required
from portal.web.deps import SettingsDep


class WalletOut(msgspec.Struct):
    expert: str  # the expert's slug
    expert_name: str
    available: int
    held: int
    expiring_soon: int  # available credits expiring within 30 days
    next_expiry: datetime | None

    @classmethod
    def of(cls, view: WalletView) -> WalletOut:
        return cls(
            view.expert_slug,
            view.expert_name,
            view.available,
            view.held,
            view.expiring_soon,
            view.next_expiry,
        )


class EntryOut(msgspec.Struct):
    id: int
    at: datetime
    kind: str  # grant, hold, capture, release, expire, refund, adjust
    credits: int  # signed, as the client sees it
    available_after: int
    held_after: int
    reference: str  # what caused it: "purchase:12", "booking:7", "adjust:…"
    description: str


@get("/wallets", name="api_wallets", guards=[login_required], tags=["credits"])
async def wallets(request: Request[Any, Any, Any]) -> list[WalletOut]:
    """The caller's balances, one per expert."""
    user = current_user(request)
    assert user is not None
    return [WalletOut.of(view) for view in await wallets_of(client_id=user.id)]


@get(
    "/wallets/{slug:str}/ledger",
    name="api_wallet_ledger",
    guards=[login_required],
    tags=["credits"],
    responses=ERRORS,
)
async def wallet_ledger(request: Request[Any, Any, Any], slug: Slug) -> list[EntryOut]:
    """Every entry of the caller's wallet with this expert, oldest first."""
    user = current_user(request)
    assert user is not None
    view = await wallet_of(client_id=user.id, expert_slug=slug)
    return [
        EntryOut(
            id=row["id"],
            at=row["created_at"],
            kind=row["kind"],
            credits=change(row["kind"], row["amount"], row["held_change"]),
            available_after=row["available_after"],
            held_after=row["held_after"],
            reference=row["reference"],
            description=what(row["kind"], row["reference"], row["memo"]),
        )
        for row in await entries_of(wallet_id=view.wallet_id)
    ]


class CheckoutIn(msgspec.Struct, forbid_unknown_fields=True):
    pack_id: JsonId


class CheckoutOut(msgspec.Struct):
    purchase_id: int
    checkout_url: str  # Stripe Checkout; a path of the portal for the test checkout


@post(
    "/experts/{slug:str}/checkout",
    name="api_checkout",
    guards=[login_required],
    tags=["credits"],
    status_code=201,
    responses={
        **ERRORS,
        409: ResponseSpec(ErrorOut, description="The pack is archived"),
        503: ResponseSpec(
            ErrorOut, description="Payments are not available: `payments_unavailable`"
        ),
    },
)
async def checkout(
    request: Request[Any, Any, Any], slug: Slug, data: JSONBody[CheckoutIn], settings: SettingsDep
) -> CheckoutOut:
    """Start buying a pack: the purchase records the price and charter version; pay at
    `checkout_url`. The credits arrive with the payment's webhook event."""
    user = current_user(request)
    assert user is not None
    expert = await expert_by_slug(slug)
    payments_ready(settings)
    purchase = await purchase_start(client_id=user.id, expert=expert, pack_id=data.pack_id)
    return CheckoutOut(purchase.id, await checkout_url(request, settings, purchase, slug))


HANDLERS = [wallets, wallet_ledger, checkout]
