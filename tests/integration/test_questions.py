"""Written questions: prices (included ones too), reply deadlines on the working-hours
clock, answers and what they debit, expiry, the worker running twice, races on one wallet,
escaping, and who may read what."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from httpx import AsyncClient

from portal.accounts.tables import Expert, User
from portal.booking.availability import override_set
from portal.charter.rules import Rules
from portal.credits import ledger
from portal.credits.services import verify_all
from portal.errors import Conflict, NotFound, ValidationFailed
from portal.questions.services import answer, ask, questions_settle_due, quote, settle
from portal.questions.tables import Question
from tests.support import (
    PASSWORD,
    give_credits,
    login,
    make_booking,
    make_expert,
    make_published_expert,
    make_user,
    post_form,
)

PARIS = ZoneInfo("Europe/Paris")
FRIDAY_EVENING = datetime(2026, 11, 27, 22, tzinfo=PARIS)  # a Friday, after hours
TUESDAY_NOON = datetime(2026, 11, 24, 12, tzinfo=PARIS)


async def _setup(credits: int = 10, **rules: Any) -> tuple[Expert, User]:
    expert = await make_published_expert(rules=Rules(**rules))
    client = await make_user("c@example.org")
    if credits:
        await give_credits(client, expert, credits)
    return expert, client


async def _balance(client: User, expert: Expert) -> tuple[int, int]:
    wallet = await ledger.wallet_for(client_id=client.id, expert_id=expert.id)
    assert await ledger.wallet_check(wallet_id=wallet.id) == []
    got = await ledger.balance(wallet_id=wallet.id)
    return got.available, got.held


async def test_an_urgent_question_sent_friday_night_is_due_monday_ten() -> None:
    expert, client = await _setup()
    priced = await quote(expert=expert, client=client, urgent=True, now=FRIDAY_EVENING)
    assert (priced.price, priced.premium, priced.off_hours) == (1, 1, True)
    assert priced.due_at.astimezone(PARIS) == datetime(2026, 11, 30, 10, tzinfo=PARIS)
    question = await ask(
        client=client,
        expert=expert,
        body="Clause de non-concurrence ?",
        urgent=True,
        key="k1",
        now=FRIDAY_EVENING,
    )
    assert question.due_at == priced.due_at and await _balance(client, expert) == (8, 2)
    # Monday off: the clock waits until Tuesday 10:00.
    await override_set(expert, day=datetime(2026, 11, 30).date(), hours="", note="Férié")
    later = await quote(expert=expert, client=client, urgent=True, now=FRIDAY_EVENING)
    assert later.due_at.astimezone(PARIS) == datetime(2026, 12, 1, 10, tzinfo=PARIS)


async def test_normal_questions_use_the_reply_time_and_the_lunch_break() -> None:
    expert, client = await _setup(reply_working_hours=2)
    priced = await quote(expert=expert, client=client, urgent=False, now=TUESDAY_NOON)
    # 12:00-12:30 then 14:00-15:30: two working hours.
    assert priced.due_at.astimezone(PARIS) == datetime(2026, 11, 24, 15, 30, tzinfo=PARIS)
    assert (priced.price, priced.premium) == (1, 0)


@pytest.mark.parametrize(
    ("change", "field"),
    [({"body": "   "}, "body"), ({"body": "x" * 4001}, "body"), ({"urgent": True}, "urgent")],
)
async def test_bad_questions_are_refused(change: dict[str, Any], field: str) -> None:
    expert, client = await _setup(urgent_enabled=False)
    values = {"body": "Une question", "urgent": False, "key": "k"} | change
    with pytest.raises(ValidationFailed) as raised:
        await ask(client=client, expert=expert, **values)
    assert field in raised.value.errors and await Question.count() == 0


async def test_off_hours_urgency_can_be_refused() -> None:
    expert, client = await _setup(off_hours_urgent=False)
    with pytest.raises(ValidationFailed):
        await ask(
            client=client, expert=expert, body="Vite", urgent=True, key="k", now=FRIDAY_EVENING
        )
    await ask(
        client=client, expert=expert, body="Pas urgent", urgent=False, key="k2", now=FRIDAY_EVENING
    )


async def test_no_published_charter_no_question() -> None:
    expert = await make_expert()
    client = await make_user("c@example.org")
    with pytest.raises(NotFound):
        await ask(client=client, expert=expert, body="Bonjour", urgent=False, key="k")


async def _answered(expert: Expert, question: Question, billable: bool, late: bool = False) -> None:
    if late:  # the deadline passed before the answer
        await Question.update({Question.due_at: datetime.now(UTC) - timedelta(minutes=1)}).where(
            Question.id == question.id
        )
    await answer(expert=expert, question_id=question.id, body="Réponse", billable=billable)


async def test_answers_debit_what_the_charter_says_once() -> None:
    expert, client = await _setup()
    on_time, late, free = [
        await ask(client=client, expert=expert, body=f"Q{n}", urgent=True, key=f"k{n}")
        for n in range(3)
    ]
    assert await _balance(client, expert) == (4, 6)
    await _answered(expert, on_time, billable=True)
    await _answered(expert, late, billable=True, late=True)
    await _answered(expert, free, billable=False)
    assert await questions_settle_due() == 3
    assert await questions_settle_due() == 0  # the worker again: nothing more
    await settle(question_id=on_time.id)  # the job for one question, again
    captured = {q.id: q.captured for q in await Question.objects()}
    assert captured == {on_time.id: 2, late.id: 1, free.id: 0}
    assert await _balance(client, expert) == (7, 0)
    assert await verify_all() == {}


async def test_unanswered_questions_expire_and_release() -> None:
    expert, client = await _setup(question_expiry_days=7)
    question = await ask(client=client, expert=expert, body="Q", urgent=False, key="k")
    assert await questions_settle_due() == 0
    assert await questions_settle_due(now=datetime.now(UTC) + timedelta(days=8)) == 1
    assert (await Question.objects().get(Question.id == question.id)).status == "expired"
    assert await _balance(client, expert) == (10, 0)


async def test_questions_included_with_a_booking_are_used_first() -> None:
    expert, client = await _setup(included_messages=2, included_window_days=7)
    start = datetime.now(UTC) - timedelta(days=1)
    await make_booking(expert, client, start, status="completed")
    priced = await quote(expert=expert, client=client, urgent=False)
    assert priced.price == 0 and priced.included is not None and priced.included.left == 2
    first = await ask(client=client, expert=expert, body="Q1", urgent=False, key="k1")
    second = await ask(client=client, expert=expert, body="Q2", urgent=True, key="k2")
    third = await ask(client=client, expert=expert, body="Q3", urgent=False, key="k3")
    assert [(q.price, q.premium) for q in (first, second, third)] == [(0, 0), (0, 1), (1, 0)]
    assert first.hold is None and await _balance(client, expert) == (8, 2)
    # An included question that expires gives its place back.
    await settle(question_id=first.id, now=datetime.now(UTC) + timedelta(days=8))
    assert (await quote(expert=expert, client=client, urgent=False)).price == 0


async def test_a_follow_up_is_a_question_of_its_own() -> None:
    expert, client = await _setup()
    first = await ask(client=client, expert=expert, body="Q1", urgent=False, key="k1")
    again = await ask(client=client, expert=expert, body="Q1", urgent=False, key="k1")
    assert again.id == first.id  # the same form twice
    follow = await ask(
        client=client, expert=expert, body="Et ?", urgent=False, key="k2", follows=first.id
    )
    assert follow.thread == first.id and follow.price == 1
    other = await make_user("o@example.org")
    with pytest.raises(NotFound):  # not their thread
        await ask(client=other, expert=expert, body="!", urgent=False, key="k3", follows=first.id)


async def _token(client: AsyncClient, email: str) -> dict[str, str]:
    got = await client.post("/api/v1/tokens", json={"email": email, "password": PASSWORD})
    return {"Authorization": f"Bearer {got.json()['token']}"}


async def test_simultaneous_questions_on_a_wallet_that_affords_three(client: AsyncClient) -> None:
    expert, _client = await _setup(credits=3, included_messages=0)
    headers = await _token(client, "c@example.org")
    answers = await asyncio.gather(
        *(
            client.post(
                "/api/v1/experts/alice-expert/questions",
                json={"body": f"Question {n}", "urgent": False},
                headers=headers,
            )
            for n in range(8)
        )
    )
    codes = Counter(r.status_code for r in answers)
    assert codes == {201: 3, 402: 5}, [r.text for r in answers]
    assert await _balance(_client, expert) == (0, 3)


async def test_the_api_answers_and_settles(client: AsyncClient) -> None:
    await _setup()
    headers = await _token(client, "c@example.org")
    sent = await client.post(
        "/api/v1/experts/alice-expert/questions",
        json={"body": "Puis-je résilier ?", "urgent": True},
        headers=headers,
    )
    assert sent.status_code == 201, sent.text
    body = sent.json()
    assert body["price"] == 2 and body["status"] == "open" and body["due_at"]
    expert_headers = await _token(client, "expert@example.org")
    inbox = (await client.get("/api/v1/expert/questions", headers=expert_headers)).json()
    assert [q["id"] for q in inbox] == [body["id"]]
    answered = await client.post(
        f"/api/v1/expert/questions/{body['id']}/answer",
        json={"body": "Oui, avec un préavis.", "billable": True},
        headers=expert_headers,
    )
    assert answered.status_code == 200 and answered.json()["status"] == "answered"
    again = await client.post(
        f"/api/v1/expert/questions/{body['id']}/answer",
        json={"body": "Encore", "billable": False},
        headers=expert_headers,
    )
    assert again.status_code == 409
    await questions_settle_due()
    shown = (await client.get(f"/api/v1/questions/{body['id']}", headers=headers)).json()
    assert (shown["status"], shown["captured"], shown["billable"]) == ("settled", 2, True)
    await make_user("o@example.org")
    other = await _token(client, "o@example.org")
    assert (await client.get(f"/api/v1/questions/{body['id']}", headers=other)).status_code == 404
    empty = await client.post(
        "/api/v1/experts/alice-expert/questions", json={"body": ""}, headers=headers
    )
    assert empty.status_code == 422


XSS = '<script>alert(1)</script><div hx-get="/logout" hx-trigger="load">clic</div>'


async def test_what_people_write_is_never_live(client: AsyncClient) -> None:
    expert, customer = await _setup()
    question = await ask(client=customer, expert=expert, body=XSS, urgent=False, key="k")
    await answer(expert=expert, question_id=question.id, body=XSS, billable=False)
    await login(client, "c@example.org")
    pages = [await client.get(f"/me/questions/{question.id}"), await client.get("/me")]
    await _open_copy(question)  # an open one too, for the expert's inbox
    await login(client, "expert@example.org")
    pages += [
        await client.get(f"/expert/questions/{question.id}"),
        await client.get("/expert/questions"),
        await client.get("/expert/questions", headers={"HX-Request": "true"}),
    ]
    for page in pages:
        assert page.status_code == 200
        assert "<script>alert(1)" not in page.text and 'hx-get="/logout"' not in page.text
        assert "&lt;script&gt;alert(1)" in page.text  # shown, as text


async def _open_copy(question: Question) -> None:
    await ask(
        client=await User.objects().get(User.id == question.client),
        expert=await Expert.objects().get(Expert.id == question.expert),
        body=question.body,
        urgent=False,
        key="k-open",
    )


async def test_asking_and_answering_through_the_pages(client: AsyncClient) -> None:
    await _setup()
    await login(client, "c@example.org")
    form = await client.get("/e/alice-expert/ask")
    assert form.status_code == 200 and "Réponse attendue" in form.text
    quote_block = await client.get("/e/alice-expert/ask?urgent=on", headers={"HX-Request": "true"})
    assert 'id="quote"' in quote_block.text and "<html" not in quote_block.text
    assert "2 crédits" in quote_block.text
    sent = await post_form(
        client,
        "/e/alice-expert/ask",
        {"body": "Ma question", "urgent": "on", "key": "form-1", "charter_version": "1"},
        from_page="/e/alice-expert/ask",
    )
    assert sent.status_code == 303
    question = await Question.objects().first()
    assert question is not None and question.urgent
    await login(client, "expert@example.org")
    inbox = (await client.get("/expert/questions")).text
    assert "Ma question" in inbox and "urgent" in inbox
    bad = await post_form(
        client,
        f"/expert/questions/{question.id}/answer",
        {"answer": "Voilà", "kind": ""},
        from_page=f"/expert/questions/{question.id}",
    )
    assert bad.status_code == 422
    done = await post_form(
        client,
        f"/expert/questions/{question.id}/answer",
        {"answer": "Voilà", "kind": "expertise"},
        from_page=f"/expert/questions/{question.id}",
    )
    assert done.status_code == 303
    await questions_settle_due()
    await login(client, "c@example.org")
    thread = (await client.get(f"/me/questions/{question.id}")).text
    assert "Voilà" in thread and "2 crédits débités" in thread


async def test_a_cancelled_future_call_includes_nothing() -> None:
    expert, client = await _setup(included_messages=2)
    start = datetime.now(UTC) + timedelta(days=3)
    await make_booking(expert, client, start, status="booked")
    # A call still to come includes nothing yet (it could be cancelled for free).
    assert (await quote(expert=expert, client=client, urgent=False)).price == 1


async def test_a_question_past_its_closing_time_cannot_be_answered() -> None:
    expert, client = await _setup(question_expiry_days=1)
    question = await ask(client=client, expert=expert, body="Q", urgent=False, key="k")
    assert question.expires_at >= question.due_at  # never closed before its deadline
    later = question.expires_at + timedelta(minutes=1)
    with pytest.raises(Conflict) as closed:
        await answer(
            expert=expert, question_id=question.id, body="Trop tard", billable=True, now=later
        )
    assert closed.value.code == "question_closed"


async def test_an_expert_answers_each_open_question_of_a_thread(client: AsyncClient) -> None:
    expert, customer = await _setup()
    first = await ask(client=customer, expert=expert, body="Première", urgent=False, key="k1")
    second = await ask(
        client=customer, expert=expert, body="Suite", urgent=False, key="k2", follows=first.id
    )
    await login(client, "expert@example.org")
    page = (await client.get(f"/expert/questions/{first.id}")).text
    assert f"/expert/questions/{first.id}/answer" in page
    assert f"/expert/questions/{second.id}/answer" in page
    await login(client, "c@example.org")
    assert (await client.get(f"/expert/questions/{first.id}")).status_code in (403, 404)
    for bad in ("abc", "²", "99999999999999999999"):
        assert (await client.get(f"/e/alice-expert/ask?follows={bad}")).status_code == 200
