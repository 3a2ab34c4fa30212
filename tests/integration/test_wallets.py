"""The client's balances and history, on pages, as CSV and through the API."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from httpx import AsyncClient

from portal.charter.tables import CreditPack
from portal.credits import ledger
from portal.credits.purchases import purchase_paid, purchase_start
from portal.credits.services import wallet_adjust
from portal.credits.tables import Entry
from tests.support import PASSWORD, login, make_published_expert, make_user, post_form


async def _wallet_with_history() -> int:
    client = await make_user("c@example.org")
    expert = await make_published_expert()
    wallet = await ledger.wallet_for(client_id=client.id, expert_id=expert.id)
    soon = datetime.now(UTC) + timedelta(days=10)
    await ledger.grant(
        wallet_id=wallet.id,
        credits=5,
        expires_at=soon,
        reference="purchase:1",
        key="grant:purchase:1",
    )
    await ledger.grant(
        wallet_id=wallet.id,
        credits=10,
        expires_at=soon + timedelta(days=300),
        reference="purchase:2",
        key="grant:purchase:2",
    )
    held = await ledger.hold(wallet_id=wallet.id, amount=2, reference="booking:7")
    await ledger.capture(wallet_id=wallet.id, hold_id=held.id)
    await ledger.hold(wallet_id=wallet.id, amount=1, reference="question:4")
    return wallet.id


async def test_balances_on_the_client_space(client: AsyncClient) -> None:
    await _wallet_with_history()
    await login(client, "c@example.org")
    page = (await client.get("/me")).text
    assert "Alice Expert" in page
    assert "12 crédits disponibles" in page
    assert "1 crédit réservé pour des échanges à venir" in page
    assert "2 crédits expirent dans les 30 jours" in page  # 5 bought, 3 taken from the oldest


async def test_history_in_plain_words_and_csv(client: AsyncClient) -> None:
    wallet_id = await _wallet_with_history()
    await login(client, "c@example.org")
    page = (await client.get("/me/wallets/alice-expert")).text
    assert "Crédits débités — Rendez-vous n° 7" in page
    assert "Crédits réservés — Question n° 4" in page
    assert "Crédits ajoutés — Achat n° 2" in page
    assert 'download hx-boost="false"' in page  # a file, not a page htmx would paste in
    response = await client.get("/me/wallets/alice-expert/history.csv")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    # French: `;` between fields, headers in French, times in the client's zone.
    text = response.content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    assert list(rows[0]) == [
        "Date (Europe/Paris)",
        "Opération",
        "Crédits",
        "Disponible ensuite",
        "Réservés ensuite",
        "Référence",
    ]
    assert [int(r["Crédits"]) for r in rows] == [5, 10, -2, -2, -1]
    assert rows[-1]["Disponible ensuite"] == "12" and rows[-1]["Réservés ensuite"] == "1"
    assert rows[3]["Opération"] == "Crédits débités — Rendez-vous n° 7"
    [first] = await Entry.select(Entry.created_at).order_by(Entry.id).limit(1)
    paris = first["created_at"].astimezone(ZoneInfo("Europe/Paris"))
    assert rows[0]["Date (Europe/Paris)"] == paris.strftime("%Y-%m-%d %H:%M")
    # English: `,` and English headers.
    await post_form(client, "/lang", {"locale": "en", "next": "/"}, from_page="/")
    english = (await client.get("/me/wallets/alice-expert/history.csv")).content
    rows = list(csv.DictReader(io.StringIO(english.decode("utf-8-sig"))))
    assert rows[3]["What"] == "Credits debited — Booking #7"
    assert [int(r["Credits"]) for r in rows] == [5, 10, -2, -2, -1]
    assert await ledger.wallet_check(wallet_id=wallet_id) == []


async def test_someone_elses_wallet_is_not_found(client: AsyncClient) -> None:
    await _wallet_with_history()
    await make_user("other@example.org")
    await login(client, "other@example.org")
    assert (await client.get("/me/wallets/alice-expert")).status_code == 404
    assert (await client.get("/me/wallets/alice-expert/history.csv")).status_code == 404
    assert "Vous n’avez pas encore de crédits" in (await client.get("/me")).text


async def test_wallets_through_the_api(client: AsyncClient) -> None:
    await _wallet_with_history()
    token = (
        await client.post("/api/v1/tokens", json={"email": "c@example.org", "password": PASSWORD})
    ).json()
    headers = {"Authorization": f"Bearer {token['token']}"}
    wallets = (await client.get("/api/v1/wallets", headers=headers)).json()
    assert [(w["expert"], w["available"], w["held"], w["expiring_soon"]) for w in wallets] == [
        ("alice-expert", 12, 1, 2)
    ]
    ledger_rows = (await client.get("/api/v1/wallets/alice-expert/ledger", headers=headers)).json()
    assert [r["kind"] for r in ledger_rows] == ["grant", "grant", "hold", "capture", "hold"]
    assert ledger_rows[3]["reference"] == "booking:7"
    missing = await client.get("/api/v1/wallets/nobody/ledger", headers=headers)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert (await client.get("/api/v1/wallets")).status_code == 401


async def test_expert_gives_and_takes_back_credits_once_per_form(client: AsyncClient) -> None:
    from portal.credits.tables import Entry

    await make_user("c@example.org")
    await make_published_expert()
    await login(client, "expert@example.org")
    form = {"email": "c@example.org", "credits": "+5", "reason": "Geste commercial", "key": "k1"}
    first = await post_form(client, "/expert/clients/adjust", form, from_page="/expert/clients")
    again = await post_form(client, "/expert/clients/adjust", form, from_page="/expert/clients")
    assert first.status_code == again.status_code == 303
    assert await Entry.count() == 1  # a double submission applies once
    page = (await client.get("/expert/clients")).text
    assert "c@example.org" in page
    too_much = await post_form(
        client,
        "/expert/clients/adjust",
        {**form, "credits": "-9", "key": "k2"},
        from_page="/expert/clients",
    )
    assert too_much.status_code == 422
    assert "Ce client a moins de crédits disponibles." in too_much.text
    no_reason = await post_form(
        client,
        "/expert/clients/adjust",
        {**form, "reason": "", "key": "k3"},
        from_page="/expert/clients",
    )
    assert no_reason.status_code == 422 and "Indiquez un motif" in no_reason.text
    nobody = await post_form(
        client,
        "/expert/clients/adjust",
        {**form, "email": "x@example.org", "key": "k4"},
        from_page="/expert/clients",
    )
    assert nobody.status_code == 422 and "Aucun client n’a cette adresse e-mail." in nobody.text
    taken = await post_form(
        client,
        "/expert/clients/adjust",
        {**form, "credits": "-2", "reason": "Correction", "key": "k5"},
        from_page="/expert/clients",
    )
    assert taken.status_code == 303
    await post_form(client, "/logout", {}, from_page="/expert")
    await login(client, "c@example.org")
    history = (await client.get("/me/wallets/alice-expert")).text
    assert "Ajustement par l’expert\u202f: Geste commercial" in history
    assert "3 crédits disponibles" in (await client.get("/me")).text


async def test_clients_page_is_for_experts(client: AsyncClient) -> None:
    await make_user("c@example.org")
    await login(client, "c@example.org")
    assert (await client.get("/expert/clients")).status_code == 403


async def _dated(key: str, moment: datetime) -> None:
    await Entry.update({Entry.created_at: moment}).where(Entry.idempotency_key == key)


async def test_the_monthly_statement_counts_in_the_clients_time_zone(client: AsyncClient) -> None:
    buyer = await make_user("c@example.org")  # in Europe/Paris
    expert = await make_published_expert(packs=(("Essentiel", 10, 420_00),))
    pack = await CreditPack.objects().get(CreditPack.expert == expert.id)
    purchase = await purchase_paid(
        purchase=await purchase_start(client_id=buyer.id, expert=expert, pack_id=pack.id)
    )
    wallet = await ledger.wallet_for(client_id=buyer.id, expert_id=expert.id)
    await wallet_adjust(
        client_id=buyer.id,
        expert_id=expert.id,
        credits=3,
        reason="Geste",
        validity_months=12,
        key="k",
    )
    held = await ledger.hold(wallet_id=wallet.id, amount=2, reference="booking:7")
    await ledger.capture(wallet_id=wallet.id, hold_id=held.id)
    await ledger.hold(wallet_id=wallet.id, amount=1, reference="question:4")
    await _dated(f"grant:purchase:{purchase.id}", datetime(2026, 9, 15, 10, tzinfo=UTC))
    # 22:30 UTC on 30 September is 00:30 on 1 October in Paris: an October movement.
    await _dated("adjust:k", datetime(2026, 9, 30, 22, 30, tzinfo=UTC))
    await _dated("hold:booking:7", datetime(2026, 10, 5, 9, tzinfo=UTC))
    await _dated("capture:booking:7", datetime(2026, 10, 5, 10, tzinfo=UTC))
    await _dated("hold:question:4", datetime(2026, 10, 31, 23, 30, tzinfo=UTC))  # November

    await login(client, "c@example.org")
    october = await client.get("/me/wallets/alice-expert/statement?month=2026-10")
    assert october.status_code == 200
    page = october.text
    assert "Relevé d’usage — octobre 2026" in page
    assert "Europe/Paris" in page
    start, end = _rows(page, "statement-balances")
    assert start[1:] == ["10", "0"] and end[1:] == ["11", "0"]  # not the November hold
    assert _rows(page, "statement-exchanges") == [
        ["05/10/2026 12:00", "Crédits débités — Rendez-vous n° 7", "—", "2"]
    ]
    assert _rows(page, "statement-movements") == [
        ["01/10/2026 00:30", "Ajustement par l’expert\u202f: Geste", "—", "+3"]
    ]

    september = (await client.get("/me/wallets/alice-expert/statement?month=2026-09")).text
    assert _rows(september, "statement-exchanges") == []
    assert _rows(september, "statement-movements") == [
        ["15/09/2026 12:00", f"Crédits ajoutés — Achat n° {purchase.id}", "1", "+10"]
    ]
    assert 'rel="prev"' not in september  # nothing before the first entry

    bad = await client.get("/me/wallets/alice-expert/statement?month=2026-13")
    assert bad.status_code in (400, 422) and "AAAA-MM" in bad.text
    await make_user("other@example.org")
    await login(client, "other@example.org")
    assert (await client.get("/me/wallets/alice-expert/statement")).status_code == 404


def _rows(page: str, table_id: str) -> list[list[str]]:
    """The body rows of one table of the page, as text; none when the table is absent."""
    table = re.search(rf'<table[^>]*id="{table_id}".*?<tbody>(.*?)</tbody>', page, flags=re.S)
    if table is None:
        return []
    return [
        [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, flags=re.S)
        ]
        for row in re.findall(r"<tr>(.*?)</tr>", table[1], flags=re.S)
    ]
