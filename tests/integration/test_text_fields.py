"""Names and texts refuse what would break an email or hide what they say (line breaks in
a one-line name, control characters anywhere, bidirectional overrides): each service
that writes one refuses it with a message for that field, pages and the API answer 422 in
the reader's language, and so do the commands that create accounts."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from httpx import AsyncClient

from portal.accounts.services import (
    expert_create,
    expert_update_profile,
    user_create,
    user_update_profile,
)
from portal.accounts.tables import Expert, User
from portal.booking.availability import (
    AvailabilityForm,
    availability_save,
    calendar_add,
    override_set,
)
from portal.charter.rules import Rules
from portal.charter.services import draft_save, pack_create
from portal.errors import ValidationFailed
from portal.questions.services import answer, ask
from portal.validation import MULTI_LINE, SINGLE_LINE
from tests.conftest import TMP
from tests.support import (
    PASSWORD,
    book_call,
    give_credits,
    login,
    make_published_expert,
    make_user,
    next_monday_at,
    post_form,
)

HEADER_BREAK = "X\r\nBcc: someone@example.org"
ONE_LINE_FR = (
    "Les retours à la ligne et les caractères de contrôle invisibles ne sont pas acceptés ici."
)


@dataclass
class People:
    expert: Expert
    client: User


def _hours(**changes: str) -> AvailabilityForm:
    values: dict[str, Any] = {
        "timezone": "Europe/Paris",
        "hours": {"mon": "09:00-12:00"},
        "call_mode": "expert_calls",
        "phone": "",
        "meeting_url": "",
    }
    return AvailabilityForm(**(values | changes))


async def _asked(people: People, body: str = "Une question ?") -> Any:
    return await ask(client=people.client, expert=people.expert, body=body, urgent=False, key=body)


async def _answer(people: People, body: str) -> Any:
    question = await _asked(people, "À répondre")
    return await answer(expert=people.expert, question_id=question.id, body=body, billable=True)


# (field refused, message, what writes it with a bad value, what writes it with a good one)
Write = Callable[[People, str], Awaitable[Any]]
CASES: list[tuple[str, str, Write, str, str]] = [
    (
        "name",
        SINGLE_LINE,
        lambda p, v: user_create(email="n@example.org", password=PASSWORD, name=v),
        HEADER_BREAK,
        "Noé Dupont",
    ),
    (
        "email",
        SINGLE_LINE,
        lambda p, v: user_create(email=v, password=PASSWORD),
        "n\x1b@example.org",
        "n@example.org",
    ),
    (
        "name",
        SINGLE_LINE,
        lambda p, v: expert_create(email="e2@example.org", password=PASSWORD, slug="e2", name=v),
        "Claire\u2028Martin",
        "Claire Martin",
    ),
    (
        "name",
        SINGLE_LINE,
        lambda p, v: user_update_profile(user=p.client, name=v, locale="fr", timezone="UTC"),
        "evil\u202egpj.exe",
        "Camille",
    ),
    (
        "display_name",
        SINGLE_LINE,
        lambda p, v: expert_update_profile(expert=p.expert, display_name=v, headline="", bio=""),
        "Alice\tExpert",
        "Alice Expert",
    ),
    (
        "headline",
        SINGLE_LINE,
        lambda p, v: expert_update_profile(expert=p.expert, display_name="A", headline=v, bio=""),
        "Conseil\nen droit",
        "Conseil en droit",
    ),
    (
        "bio",
        MULTI_LINE,
        lambda p, v: expert_update_profile(expert=p.expert, display_name="A", headline="", bio=v),
        "Avocate\x00",
        "Avocate.\n\nDroit des affaires.",
    ),
    (
        "name",
        SINGLE_LINE,
        lambda p, v: pack_create(expert=p.expert, name=v, credits=5, price_minor=100),
        HEADER_BREAK,
        "Pack découverte",
    ),
    (
        "intro",
        MULTI_LINE,
        lambda p, v: draft_save(expert=p.expert, rules=Rules(intro=v)),
        "\x1b[31mBonjour",
        "Bonjour,\n\tbienvenue.",
    ),
    (
        "coordination_examples",
        MULTI_LINE,
        lambda p, v: draft_save(expert=p.expert, rules=Rules(coordination_examples=v)),
        "Horaires\u2029",
        "Horaires\nConfirmations",
    ),
    (
        "expertise_examples",
        MULTI_LINE,
        lambda p, v: draft_save(expert=p.expert, rules=Rules(expertise_examples=v)),
        "Avis\x7f",
        "Avis\r\nConseil",
    ),
    (
        "meeting_url",
        SINGLE_LINE,
        lambda p, v: availability_save(p.expert, _hours(meeting_url=v)),
        "https://meet.example.org/a\r\nb",
        "https://meet.example.org/a",
    ),
    (
        "note",
        SINGLE_LINE,
        lambda p, v: override_set(p.expert, day=next_monday_at(9).date(), hours="", note=v),
        "Férié\r\nBcc: x",
        "Férié",
    ),
    (
        "name",
        SINGLE_LINE,
        lambda p, v: calendar_add(p.expert, url="https://cal.example.org/a.ics", name=v),
        "Per\nso",
        "Perso",
    ),
    (
        "url",
        SINGLE_LINE,
        lambda p, v: calendar_add(p.expert, url=v, name="Perso"),
        "https://cal.example.org/a\r\n.ics",
        "https://cal.example.org/a.ics",
    ),
    (
        "phone",
        SINGLE_LINE,
        lambda p, v: book_call(p.expert, p.client, next_monday_at(10), phone=v),
        "+33 6 12 34 56 78\r\nX",
        "+33 6 12 34 56 78",
    ),
    ("body", MULTI_LINE, lambda p, v: _asked(p, v), "Bonjour\x1b", "Bonjour,\nune question ?"),
    (
        "answer",
        MULTI_LINE,
        lambda p, v: _answer(p, v),
        "Voici\x00",
        "Voici :\n- un\n- deux",
    ),
]


@pytest.fixture
async def people() -> People:
    expert = await make_published_expert()
    client = await make_user("c@example.org")
    await give_credits(client, expert, 20)
    return People(expert, client)


@pytest.mark.parametrize(
    ("field", "message", "write", "bad", "good"),
    CASES,
    ids=[f"{case[0]}-{n}" for n, case in enumerate(CASES)],
)
async def test_each_text_refuses_what_it_may_not_hold(
    people: People, field: str, message: str, write: Write, bad: str, good: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        await write(people, bad)
    assert refused.value.errors.get(field) == message
    await write(people, good)  # what the field is for is kept


async def test_pages_and_the_api_refuse_with_the_field_in_the_readers_language(
    client: AsyncClient,
) -> None:
    await make_published_expert()
    await login(client, "expert@example.org")
    form = {"name": HEADER_BREAK, "credits": "5", "price": "10"}
    page = await post_form(client, "/expert/packs", form, from_page="/expert/packs")
    assert page.status_code == 422 and ONE_LINE_FR in page.text
    for path, form in (
        ("/expert/availability/dates", {"day": "2030-01-07", "hours": "", "note": "a\nb"}),
        ("/expert/availability/calendars", {"url": "https://c.example.org/a", "name": "a\rb"}),
    ):
        page = await post_form(client, path, form, from_page="/expert/availability")
        assert page.status_code == 422
        assert f'<p class="field-error" id="e-{list(form)[-1]}">{ONE_LINE_FR}</p>' in page.text

    token = await client.post(
        "/api/v1/tokens", json={"email": "expert@example.org", "password": PASSWORD}
    )
    bearer = {"Authorization": "Bearer " + token.json()["token"]}
    pack = {"name": HEADER_BREAK, "credits": 5, "price": 1000}
    refused = await client.post("/api/v1/expert/packs", json=pack, headers=bearer)
    assert refused.status_code == 422
    assert refused.json()["code"] == "validation_failed"
    assert refused.json()["errors"] == {"name": ONE_LINE_FR}

    await User.update({User.locale: "en"}).where(User.email == "expert@example.org")
    refused = await client.post("/api/v1/expert/packs", json=pack, headers=bearer)
    assert refused.json()["errors"] == {"name": SINGLE_LINE}
    rules = (await client.get("/api/v1/expert/charter", headers=bearer)).json()["draft"]
    rules["intro"] = "\x1b[31mBonjour"
    refused = await client.put("/api/v1/expert/charter", json=rules, headers=bearer)
    assert refused.status_code == 422 and refused.json()["errors"] == {"intro": MULTI_LINE}
    assert [
        p["name"] for p in (await client.get("/api/v1/expert/packs", headers=bearer)).json()
    ] == ["Starter"]


async def test_a_question_with_a_nul_is_refused_alike_on_every_database(
    client: AsyncClient, people: People
) -> None:
    token = await client.post(
        "/api/v1/tokens", json={"email": "c@example.org", "password": PASSWORD}
    )
    bearer = {"Authorization": "Bearer " + token.json()["token"]}
    refused = await client.post(
        "/api/v1/experts/alice-expert/questions", json={"body": "Bonjour\x00"}, headers=bearer
    )
    assert refused.status_code == 422
    assert refused.json()["errors"] == {
        "body": "Ce texte contient un caractère de contrôle invisible\u202f: retirez-le "
        "(les retours à la ligne sont permis)."
    }


def _portal(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portal.cli", *args],
        input="a long enough secret\n",
        capture_output=True,
        text=True,
        cwd=TMP,
        timeout=60,
    )


async def test_the_commands_refuse_names_with_control_characters() -> None:
    client = _portal(
        "create-client", "--email", "n@example.org", "--password", "-", "--name", "Noé\nDupont"
    )
    assert client.returncode == 2
    assert f"error: name: {SINGLE_LINE}" in client.stderr
    expert = _portal(
        "create-expert",
        "--email",
        "e@example.org",
        "--password",
        "-",
        "--slug",
        "claire",
        "--name",
        "\x1b[31mClaire",
    )
    assert expert.returncode == 2 and f"error: name: {SINGLE_LINE}" in expert.stderr
    assert await User.count() == 0
