"""JSON API: the caller's wallets and their ledgers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Request, get

from portal.credits.presentation import change, what
from portal.credits.services import WalletView, entries_of, wallet_of, wallets_of
from portal.params import Slug
from portal.routes.api_charter import ERRORS
from portal.web.auth import current_user, login_required


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


HANDLERS = [wallets, wallet_ledger]
