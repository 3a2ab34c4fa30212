"""The main pages under the Content-Security-Policy, in Chromium: no violation reported while
walking them, and what their small scripts do still works (slot picker, print, copy)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.browsing import log_in
from tests.support import give_credits, make_published_expert, make_user, run_in_thread

pytestmark = pytest.mark.browser

# Runs in every document before its own scripts: reports violations to the test, and
# records print() instead of opening the print dialog.
WATCH = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.reportViolation(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
window.printed = 0;
window.print = () => { window.printed += 1; };
"""


async def _seed() -> None:
    expert = await make_published_expert()
    await give_credits(await make_user("c@example.org"), expert, 5)


def test_main_pages_raise_no_policy_violation(page: Any, artifacts: Path) -> None:
    run_in_thread(_seed())
    violations: list[str] = []
    errors: list[str] = []
    page.expose_function("reportViolation", lambda text: violations.append(text))
    page.add_init_script(WATCH)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    home = page.goto("/")
    assert "script-src 'self'" in home.headers["content-security-policy"]
    assert page.evaluate("typeof htmx") == "object"

    page.goto("/e/alice-expert")  # the next free slots arrive through htmx
    expect(page.locator("a.slot").first).to_be_visible()

    log_in(page, "c@example.org", "/e/alice-expert/book")
    page.wait_for_function("() => window.htmx !== undefined")
    page.get_by_label("Visio · 45 min · 3 crédits").check()
    expect(page).to_have_url(re.compile(r"/e/alice-expert/book\?.*channel=video&duration=45"))
    expect(page.locator("#slots a.slot").first).to_have_attribute(
        "href", re.compile(r"channel=video&duration=45")
    )
    page.screenshot(path=artifacts / "50-csp-book.png", full_page=True)

    page.goto("/me/wallets/alice-expert/statement")
    page.get_by_role("button", name="Imprimer").click()
    assert page.evaluate("window.printed") == 1

    page.get_by_role("button", name="Se déconnecter").click()
    log_in(page, "expert@example.org", "/expert/availability")
    address = page.get_by_label("Adresse privée du calendrier")
    address.click()
    selected = page.evaluate(
        "() => { const i = document.querySelector('input[data-select]');"
        " return [i.selectionStart, i.selectionEnd, i.value.length]; }"
    )
    assert selected[0] == 0 and selected[1] == selected[2] > 0

    page.goto("/schema")
    expect(page.locator("h1")).to_contain_text("Portal API")

    assert violations == []
    assert [e for e in errors if "Content Security Policy" in e or "Refused" in e] == []
    assert errors == []
