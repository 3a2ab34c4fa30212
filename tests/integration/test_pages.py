from __future__ import annotations

from httpx import AsyncClient

from tests.support import make_expert, make_published_expert


async def test_home_is_french_by_default(client: AsyncClient) -> None:
    await make_published_expert()
    await make_expert("draft@example.org", slug="not-yet-published")
    response = await client.get("/")
    assert response.status_code == 200
    assert '<html lang="fr"' in response.text
    assert "Payez l’échange, pas l’heure." in response.text
    assert "Alice Expert" in response.text
    assert 'href="/e/alice-expert"' in response.text
    assert "not-yet-published" not in response.text  # no charter published, not listed
    assert "Se connecter" in response.text


async def test_accept_language_english(client: AsyncClient) -> None:
    response = await client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="en"' in response.text
    assert "Pay for the exchange, not the hour." in response.text
