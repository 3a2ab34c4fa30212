"""An expert changes a price, sees the preview follow, publishes; the public page shows it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support import PASSWORD, make_published_expert, run_in_thread

pytestmark = pytest.mark.browser


def test_expert_changes_a_price_and_publishes(page: Any, artifacts: Path) -> None:
    run_in_thread(make_published_expert())
    page.goto("/e/alice-expert")
    expect(page.locator(".charter-version")).to_contain_text("version 1")
    row = page.locator(".price-table tr", has_text="30 min")
    expect(row.locator("td").first).to_contain_text("2 crédits")
    page.screenshot(path=artifacts / "10-charter-public-v1.png", full_page=True)

    page.goto("/login?next=/expert/charter")
    page.get_by_label("E-mail").fill("expert@example.org")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").last.click()
    expect(page).to_have_url("/expert/charter")

    page.wait_for_function("() => window.htmx !== undefined")  # live updates need htmx
    price = page.get_by_label("Appel 30 min")
    price.fill("3")
    preview_row = page.locator("#preview .price-table tr", has_text="30 min")
    expect(preview_row.locator("td").first).to_contain_text("3 crédits")  # live, before saving
    page.screenshot(path=artifacts / "11-charter-editor.png", full_page=True)
    page.get_by_role("button", name="Enregistrer le brouillon").click()
    expect(page.locator(".alert-success")).to_contain_text("Brouillon enregistré")

    page.get_by_role("button", name="Enregistrer et relire avant publication…").click()
    expect(page.locator("table.diff")).to_contain_text("30\u00a0min\u202f: 3 crédits")
    page.screenshot(path=artifacts / "12-charter-review.png", full_page=True)
    page.get_by_role("button", name="Publier la version 2").click()
    expect(page.locator(".alert-success")).to_contain_text("La version 2 est publiée.")

    page.goto("/e/alice-expert")
    expect(page.locator(".charter-version")).to_contain_text("version 2")
    row = page.locator(".price-table tr", has_text="30 min")
    expect(row.locator("td").first).to_contain_text("3 crédits")
    page.screenshot(path=artifacts / "13-charter-public-v2.png", full_page=True)
    page.set_viewport_size({"width": 375, "height": 740})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.screenshot(path=artifacts / "14-charter-public-phone.png", full_page=True)
    page.emulate_media(media="print")
    page.screenshot(path=artifacts / "15-charter-print.png", full_page=True)
