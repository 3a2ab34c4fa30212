"""A visitor signs up (and opens the emailed link), logs out, logs in, switches to English
and logs out, in Chromium."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support import run_in_thread, signup_link

pytestmark = pytest.mark.browser

EMAIL = "camille@example.org"
PASSWORD = "a long and secret phrase"

# htmx sends the token set on <body>: it must be the page's current one, which changes at
# login and logout (the forms' hidden field always is).
HEADER_TOKEN_IS_CURRENT = """() =>
  JSON.parse(document.body.getAttribute("hx-headers"))["x-csrftoken"]
  === document.querySelector("input[name=_csrf_token]").value"""


def test_signup_login_language_logout(page: Any, artifacts: Path) -> None:
    page.goto("/")
    expect(page.locator("h1")).to_have_text("Payez l’échange, pas l’heure.")
    assert page.evaluate("typeof htmx") == "object"  # the vendored htmx 2 is loaded
    page.screenshot(path=artifacts / "01-home-fr.png", full_page=True)

    page.get_by_role("link", name="Créer un compte").first.click()
    page.get_by_label("Votre nom").fill("Camille")
    page.get_by_label("E-mail").fill(EMAIL)
    page.get_by_label("Mot de passe").fill("court")
    page.get_by_role("button", name="Créer mon compte").click()
    expect(page.locator(".field-error")).to_have_text(
        "Le mot de passe doit comporter au moins 10 caractères."
    )
    page.screenshot(path=artifacts / "02-signup-error.png", full_page=True)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Créer mon compte").click()
    expect(page.locator("h1")).to_have_text("Vérifiez votre boîte mail")
    page.screenshot(path=artifacts / "02b-signup-sent.png", full_page=True)
    page.goto(run_in_thread(signup_link(EMAIL)))  # the link of the email
    expect(page.locator("h1")).to_have_text("Activez votre compte")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Activer mon compte").click()
    expect(page).to_have_url("/me")
    expect(page.locator(".alert-success")).to_have_text("Bienvenue\u202f! Votre compte est prêt.")
    expect(page.locator("h1")).to_have_text("Bonjour Camille")
    page.screenshot(path=artifacts / "03-me-fr.png", full_page=True)

    page.get_by_role("button", name="Se déconnecter").click()
    expect(page.locator(".alert-info")).to_have_text("Vous êtes déconnecté.")
    page.goto("/me")
    expect(page).to_have_url("/login?next=%2Fme")

    page.get_by_label("E-mail").fill(EMAIL)
    page.get_by_label("Mot de passe").fill("wrong password")
    page.get_by_role("button", name="Se connecter").last.click()
    expect(page.locator(".alert-error")).to_have_text("L’e-mail ou le mot de passe est incorrect.")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").last.click()
    expect(page).to_have_url("/me")
    assert page.evaluate(HEADER_TOKEN_IS_CURRENT)

    page.get_by_role("button", name="EN").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("Hello Camille")
    page.screenshot(path=artifacts / "04-me-en.png", full_page=True)

    page.get_by_role("button", name="Log out").click()
    expect(page.locator(".alert-info")).to_have_text("You are logged out.")
    assert page.evaluate(HEADER_TOKEN_IS_CURRENT)
    expect(page.locator("h1")).to_have_text("Pay for the exchange, not the hour.")
    page.screenshot(path=artifacts / "05-logged-out-en.png", full_page=True)


def test_keyboard_reaches_the_content_first(page: Any) -> None:
    page.goto("/login")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Aller au contenu")
    expect(skip).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url("/login#main")


def test_phone_layout_has_no_horizontal_scroll(page: Any, artifacts: Path) -> None:
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto("/signup")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375
    page.screenshot(path=artifacts / "06-signup-phone.png", full_page=True)
