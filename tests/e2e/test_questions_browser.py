"""A client asks an urgent question, the expert answers it as billed expertise, and the
client sees the credits debited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from portal.questions.services import questions_settle_due
from tests.e2e.browsing import log_in
from tests.support import give_credits, make_published_expert, make_user, run_in_thread

pytestmark = pytest.mark.browser


async def _seed() -> None:
    await give_credits(await make_user("c@example.org"), await make_published_expert(), 5)


def test_urgent_question_answered_as_expertise(page: Any, artifacts: Path) -> None:
    run_in_thread(_seed())
    log_in(page, "c@example.org", "/e/alice-expert")
    page.get_by_role("link", name="Poser une question écrite").click()
    expect(page.locator("h1")).to_have_text("Poser une question à Alice Expert")
    page.wait_for_function("() => window.htmx !== undefined")  # live updates need htmx
    page.get_by_label("Votre question").fill("Puis-je rompre ce contrat avant son terme ?")
    page.get_by_label("Urgent", exact=False).check()
    expect(page.locator("#quote")).to_contain_text("2 crédits")  # updated by htmx
    page.screenshot(path=artifacts / "40-ask.png", full_page=True)
    page.get_by_role("button", name="Envoyer la question").click()
    expect(page.locator(".question-status")).to_have_text("En attente de la réponse.")

    log_in(page, "expert@example.org", "/expert/questions")
    expect(page.locator(".inbox")).to_contain_text("urgent")
    page.screenshot(path=artifacts / "41-inbox.png", full_page=True)
    page.locator(".inbox a").first.click()
    page.get_by_label("Réponse", exact=True).fill("Oui, moyennant un préavis d’un mois.")
    page.get_by_label("réponse de conseil — facturée", exact=False).check()
    page.get_by_role("button", name="Envoyer la réponse").click()
    expect(page.locator(".alert-success")).to_contain_text("Votre réponse est envoyée.")
    run_in_thread(questions_settle_due())  # what the worker does next

    log_in(page, "c@example.org", "/me")
    expect(page.locator(".wallet")).to_contain_text("3 crédits disponibles")
    page.get_by_role("link", name="Puis-je rompre ce contrat", exact=False).click()
    expect(page.locator(".question-status")).to_contain_text("2 crédits débités.")
    page.screenshot(path=artifacts / "42-answered.png", full_page=True)
