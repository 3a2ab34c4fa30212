"""A client books a slot from the expert's page, sees it on their space, then cancels it
for free and gets the credits back."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support import PASSWORD, give_credits, make_published_expert, make_user, run_in_thread

pytestmark = pytest.mark.browser


async def _seed() -> None:
    await give_credits(await make_user("c@example.org"), await make_published_expert(), 5)


def test_client_books_a_slot_and_cancels_it(page: Any, artifacts: Path) -> None:
    run_in_thread(_seed())
    page.goto("/login?next=/e/alice-expert")
    page.get_by_label("E-mail").fill("c@example.org")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").last.click()
    expect(page).to_have_url("/e/alice-expert")

    page.get_by_role("link", name="Tous les créneaux libres").click()
    expect(page.locator("h1")).to_have_text("Réserver avec Alice Expert")
    page.wait_for_function("() => window.htmx !== undefined")  # live updates need htmx
    page.get_by_label("Appel · 30 min · 2 crédits").check()
    following = page.get_by_role("link", name="Semaine suivante")
    # The slots are swapped in for 30 minutes once the request answers: the link then says so.
    expect(following).to_have_attribute("href", re.compile(r"duration=30"))
    following.click()
    expect(page.locator("a.slot").first).to_have_attribute("href", re.compile(r"duration=30"))
    page.screenshot(path=artifacts / "30-book-picker.png", full_page=True)
    page.locator("a.slot").first.click()
    expect(page.locator("h1")).to_have_text("Confirmez votre réservation")
    expect(page.locator(".summary")).to_contain_text("2 crédits")
    page.get_by_label("Votre numéro de téléphone").fill("06 12 34 56 78")
    page.screenshot(path=artifacts / "31-book-confirm.png", full_page=True)
    page.get_by_role("button", name="Confirmer la réservation").click()
    expect(page.locator(".booking-status")).to_have_text(
        "Réservé\u202f: les crédits sont mis de côté jusqu’à l’échange"
    )
    page.screenshot(path=artifacts / "32-booking.png", full_page=True)

    page.goto("/me")
    expect(page.locator(".wallet")).to_contain_text("3 crédits disponibles")
    expect(page.locator(".bookings")).to_contain_text("Alice Expert")
    page.locator(".bookings a").first.click()
    page.once("dialog", lambda dialog: dialog.accept())  # "Cancel this booking?"
    page.get_by_role("button", name="Annuler gratuitement").click()
    expect(page.locator(".booking-status")).to_have_text("Annulé")
    page.goto("/me")
    expect(page.locator(".wallet")).to_contain_text("5 crédits disponibles")
    page.screenshot(path=artifacts / "33-cancelled.png", full_page=True)
