"""The time zone of the pages follows the device: found on a first visit, offered when an
account shows another, in Chromium set to other zones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from portal.accounts.tables import User
from tests.support import PASSWORD, make_user, run_in_thread

pytestmark = pytest.mark.browser


@pytest.fixture
def context_in(browser: Any, live_server: str, clean_sync: None) -> Iterator[Any]:
    contexts = []

    def make(zone: str) -> Any:
        context = browser.new_context(base_url=live_server, locale="fr-FR", timezone_id=zone)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        return page

    yield make
    for context in contexts:
        context.close()


def test_a_first_visit_shows_times_in_the_devices_zone(context_in: Any, artifacts: Path) -> None:
    page = context_in("America/New_York")
    page.goto("/")
    expect(page.locator(".site-footer")).to_contain_text("Heures affichées en America/New York")
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    assert cookies["tz"] == "America/New_York"
    expect(page.locator("[data-tz-offer]")).to_be_hidden()
    page.screenshot(path=artifacts / "tz-01-detected.png", full_page=True)


def test_an_account_in_another_zone_is_offered_the_devices(
    context_in: Any, artifacts: Path
) -> None:
    run_in_thread(make_user("c@example.org"))  # its account says Europe/Paris
    page = context_in("Asia/Tokyo")
    page.goto("/login")
    page.get_by_label("E-mail").fill("c@example.org")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page).to_have_url("/me")
    offer = page.locator("[data-tz-offer]")
    expect(offer).to_be_visible()
    expect(offer).to_contain_text("Asia/Tokyo".replace("_", " "))
    expect(offer).to_contain_text("Europe/Paris")
    page.screenshot(path=artifacts / "tz-02-offer.png", full_page=True)
    offer.get_by_role("button", name="Utiliser le fuseau de mon appareil").click()
    expect(page).to_have_url("/me")
    expect(page.locator(".site-footer")).to_contain_text("Heures affichées en Asia/Tokyo")
    expect(page.locator("[data-tz-offer]")).to_be_hidden()
    user = run_in_thread(User.objects().get(User.email == "c@example.org"))
    assert user.timezone == "Asia/Tokyo"


def test_keeping_the_accounts_zone_stops_the_offer(context_in: Any) -> None:
    run_in_thread(make_user("c@example.org"))
    page = context_in("America/Sao_Paulo")
    page.goto("/login")
    page.get_by_label("E-mail").fill("c@example.org")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.locator("[data-tz-offer]").get_by_role("button", name="Garder celui-ci").click()
    expect(page.locator("[data-tz-offer]")).to_be_hidden()
    page.reload()
    expect(page.locator("[data-tz-offer]")).to_be_hidden()
    expect(page.locator(".site-footer")).to_contain_text("Heures affichées en Europe/Paris")


def test_a_zone_is_found_by_typing_a_city(context_in: Any) -> None:
    run_in_thread(make_user("c@example.org"))
    page = context_in("Europe/Paris")
    page.goto("/login")
    page.get_by_label("E-mail").fill("c@example.org")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.goto("/account")
    picker = page.locator("#f-timezone")
    assert picker.locator("option").first.inner_text() == "Europe/Paris"  # the chosen first
    assert picker.locator("optgroup[label='Asie']").count() == 1  # grouped by region
    search = page.get_by_placeholder("Chercher une ville ou une région…")
    shown = picker.locator("option:not([hidden])")
    for typed, found in (("Londres", "Europe/London"), ("le caire", "Africa/Cairo")):
        search.fill(typed)  # a city by its French name, with or without its accents
        assert shown.all_inner_texts() == [found]
    search.fill("égypte")  # or by its country
    assert shown.all_inner_texts() == ["Africa/Cairo"]
    search.fill("tokyo")
    assert shown.all_inner_texts() == ["Asia/Tokyo"]
    assert picker.input_value() == "Asia/Tokyo"  # the match is chosen
    page.get_by_placeholder("Chercher une ville ou une région…").press("Enter")
    page.wait_for_timeout(300)
    assert page.locator(".alert-success").count() == 0  # Enter in the search box sent nothing
    page.get_by_role("button", name="Enregistrer").first.click()
    expect(page.locator(".site-footer")).to_contain_text("Heures affichées en Asia/Tokyo")


def test_a_zone_the_browser_names_by_an_old_alias_is_its_clock(context_in: Any) -> None:
    """Chromium reports India as Asia/Calcutta: the pages show Asia/Kolkata, the same
    clock, and never offer to "change" to it."""
    page = context_in("Asia/Kolkata")
    page.goto("/")
    expect(page.locator(".site-footer")).to_contain_text("Heures affichées en Asia/Kolkata")
    expect(page.locator("[data-tz-offer]")).to_be_hidden()
