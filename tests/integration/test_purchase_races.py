"""Buying races against the running app: `portal web` with two server processes, many
simultaneous clicks on *Pay*, on the test database (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from portal.charter.tables import CreditPack
from portal.credits.tables import Purchase
from tests.conftest import TMP
from tests.support import csrf_token, login, make_published_expert, make_user, web_server

pytestmark = pytest.mark.slow

CLIENTS, CLICKS = 12, 30


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with web_server(TMP, workers=2, log_name="purchase-races-web.log") as url:
        yield url


async def test_thirty_clicks_on_pay_make_one_purchase(server: str) -> None:
    """Twelve clients each click *Pay* 30 times at once: one purchase each, and every click
    of a client leads to its checkout."""
    expert = await make_published_expert(packs=(("Essentiel", 10, 420_00),))
    pack = await CreditPack.objects().get(CreditPack.expert == expert.id)
    buy = f"/e/alice-expert/buy/{pack.id}"
    browsers: list[tuple[httpx.AsyncClient, str]] = []
    limits = httpx.Limits(max_connections=CLICKS, max_keepalive_connections=CLICKS)
    try:
        for n in range(CLIENTS):
            await make_user(f"c{n}@example.org")
            http = httpx.AsyncClient(base_url=server, limits=limits, timeout=120)
            browsers.append((http, f"c{n}@example.org"))
            await login(http, f"c{n}@example.org")
            token = await csrf_token(http, buy)
            await asyncio.gather(*(http.get("/healthz") for _ in range(CLICKS)))  # connected
            browsers[-1] = (http, token)
        answers = await asyncio.gather(
            *(
                http.post(buy, data={"_csrf_token": token}, follow_redirects=False)
                for http, token in browsers
                for _ in range(CLICKS)
            )
        )
    finally:
        for http, _token in browsers:
            await http.aclose()
    assert await Purchase.count() == CLIENTS, Counter(
        row["client"] for row in await Purchase.select(Purchase.client)
    )
    for n, (_http, _token) in enumerate(browsers):
        clicks = answers[n * CLICKS : (n + 1) * CLICKS]
        assert len({(r.status_code, r.headers.get("location")) for r in clicks}) == 1
        assert clicks[0].status_code == 303
