"""Steps several browser tests take."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.support import PASSWORD


def log_in(page: Any, email: str, then: str) -> None:
    """Log in afresh through the login page, and land on `then`."""
    page.context.clear_cookies()
    page.goto(f"/login?next={then}")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").last.click()
    expect(page).to_have_url(then)
