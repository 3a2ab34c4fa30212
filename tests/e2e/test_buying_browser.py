"""A client buys a pack through the test checkout and sees the credits arrive."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support import PASSWORD, make_published_expert, make_user, run_in_thread

pytestmark = pytest.mark.browser


async def _seed() -> None:
    await make_user("c@example.org")
    await make_published_expert(packs=(("Essentiel", 10, 420_00),))


def test_client_buys_a_pack_with_the_test_checkout(page: Any, artifacts: Path) -> None:
    run_in_thread(_seed())
    page.goto("/login?next=/e/alice-expert")
    page.get_by_label("E-mail").fill("c@example.org")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").last.click()
    expect(page).to_have_url("/e/alice-expert")

    page.get_by_role("link", name="Acheter").click()
    expect(page.locator("h1")).to_have_text("Acheter le pack Essentiel")
    page.screenshot(path=artifacts / "20-buy-confirm.png", full_page=True)
    page.get_by_role("button", name="Payer 420,00\u00a0€").click()
    expect(page.locator(".alert-info")).to_contain_text("Paiement de test — aucun paiement réel.")
    page.screenshot(path=artifacts / "21-test-checkout.png", full_page=True)
    page.get_by_role("button", name="Payer (test)").click()
    expect(page.locator("#purchase-status h1")).to_have_text("Reçu")
    expect(page.locator(".alert-success")).to_have_text(
        "10 crédits ajoutés à votre solde chez Alice Expert."
    )
    page.screenshot(path=artifacts / "22-receipt.png", full_page=True)

    page.goto("/me")
    expect(page.locator(".wallet")).to_contain_text("10 crédits disponibles")
    page.screenshot(path=artifacts / "23-me-balance.png", full_page=True)
