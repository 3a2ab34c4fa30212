"""The client's space: balances per expert, each wallet's history and its CSV export."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, get
from litestar.params import FromQuery

from portal import i18n
from portal.booking.services import bookings_of_client
from portal.booking.tables import Booking
from portal.credits.presentation import entries_in_words, history_csv
from portal.credits.services import entries_of, wallet_of, wallets_of
from portal.credits.statements import Month, months_with_entries, statement_of
from portal.params import Slug
from portal.questions.selectors import questions_of_client
from portal.questions.tables import Question
from portal.web.auth import current_user, login_required
from portal.web.render import render


@get("/me", name="client_dashboard", guards=[login_required], include_in_schema=False)
async def client_dashboard(request: Request[Any, Any, Any]) -> Response[Any]:
    user = current_user(request)
    assert user is not None
    return render(
        request,
        "pages/me.html",
        wallets=await wallets_of(client_id=user.id),
        bookings=await bookings_of_client(client_id=user.id),
        questions=await questions_of_client(client_id=user.id),
        now=datetime.now(UTC),
    )


@get(
    "/me/wallets/{slug:str}", name="client_wallet", guards=[login_required], include_in_schema=False
)
async def client_wallet(request: Request[Any, Any, Any], slug: Slug) -> Response[Any]:
    user = current_user(request)
    assert user is not None
    wallet = await wallet_of(client_id=user.id, expert_slug=slug)
    entries = entries_in_words(await entries_of(wallet_id=wallet.wallet_id))
    return render(request, "pages/client/wallet.html", wallet=wallet, entries=entries)


@get(
    "/me/wallets/{slug:str}/history.csv",
    name="client_wallet_csv",
    guards=[login_required],
    include_in_schema=False,
)
async def client_wallet_csv(request: Request[Any, Any, Any], slug: Slug) -> Response[bytes]:
    user = current_user(request)
    assert user is not None
    wallet = await wallet_of(client_id=user.id, expert_slug=slug)
    return Response(
        history_csv(await entries_of(wallet_id=wallet.wallet_id)),
        media_type="text/csv",  # Litestar adds "; charset=utf-8"
        headers={"Content-Disposition": f'attachment; filename="credits-{slug}.csv"'},
    )


@get(
    "/me/wallets/{slug:str}/statement",
    name="client_statement",
    guards=[login_required],
    include_in_schema=False,
)
async def client_statement(
    request: Request[Any, Any, Any], slug: Slug, month: FromQuery[str | None] = None
) -> Response[Any]:
    """The printable usage statement of one month (the current one by default)."""
    user = current_user(request)
    assert user is not None
    tz = i18n.current_timezone()
    wallet = await wallet_of(client_id=user.id, expert_slug=slug)
    shown = Month.parse(month) if month else Month.of(datetime.now(UTC), tz)
    statement = await statement_of(
        wallet_id=wallet.wallet_id,
        month=shown,
        tz=tz,
        sources={"booking": Booking, "question": Question},
    )
    statement.exchanges[:] = entries_in_words(statement.exchanges)
    statement.movements[:] = entries_in_words(statement.movements)
    return render(
        request,
        "pages/client/statement.html",
        wallet=wallet,
        user=user,
        statement=statement,
        months=await months_with_entries(wallet_id=wallet.wallet_id, tz=tz),
        tz=tz,
        issued_at=datetime.now(UTC),
    )


ROUTES = [client_dashboard, client_wallet, client_wallet_csv, client_statement]
