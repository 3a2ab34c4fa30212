"""Redis down (really: a closed port, or a server stopped): a route that wrote to the database
and then queues a job still answers success. The job is only a trigger; the worker's sweep
settles what it would have. Sessions live in Redis, so pages then cannot tell who asks."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from litestar import Litestar

from portal.accounts.services import token_create
from portal.accounts.tables import User
from portal.app import create_app
from portal.questions.services import ask, questions_settle_due
from portal.questions.tables import Question, QuestionStatus
from portal.redis import EmbeddedRedis, connect
from portal.settings import get_settings
from portal.web.jobs import trigger
from tests.conftest import TMP
from tests.integration.conftest import running
from tests.support import (
    csrf_token,
    free_port,
    give_credits,
    login,
    make_published_expert,
    make_user,
)


def _app_with_redis(url: str) -> Litestar:
    return create_app(replace(get_settings(), redis_url=url))


async def _open_question() -> Question:
    expert = await make_published_expert()
    client = await make_user("c@example.org")
    await give_credits(client, expert, 5)
    return await ask(client=client, expert=expert, body="Puis-je résilier ?", urgent=False, key="k")


async def test_an_api_answer_is_saved_and_said_so_with_redis_down() -> None:
    question = await _open_question()
    expert_user = await User.objects().get(User.email == "expert@example.org")
    token = await token_create(user=expert_user)
    closed = f"redis://127.0.0.1:{free_port()}/0"
    async with running(_app_with_redis(closed)) as api:
        answered = await api.post(
            f"/api/v1/expert/questions/{question.id}/answer",
            json={"body": "Oui, avec un préavis.", "billable": True},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "answered"
    saved = await Question.objects().get(Question.id == question.id)
    assert saved.status == QuestionStatus.answered.value and saved.answer == "Oui, avec un préavis."
    # The sweep settles it as the job would have.
    await questions_settle_due()
    settled = await Question.objects().get(Question.id == question.id)
    assert settled.status == QuestionStatus.settled.value


async def test_a_lost_trigger_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    redis = connect(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with caplog.at_level(logging.WARNING, logger="portal.web.jobs"):
            await trigger(redis, "sync_calendar", 7, job_id="calendar:7")
    finally:
        await redis.aclose()
    assert "calendar:7" in caplog.text


async def test_the_answer_page_with_redis_stopped_writes_nothing_and_says_so() -> None:
    """The page's session is in Redis: with Redis gone, nobody is logged in, the answer is
    not written, and the page says the service is unavailable (503), never a success."""
    question = await _open_question()
    embedded = EmbeddedRedis(TMP / "redis-down")
    url = embedded.start()
    try:
        async with running(_app_with_redis(url)) as browser:
            await login(browser, "expert@example.org")
            page = f"/expert/questions/{question.id}"
            assert (await browser.get(page)).status_code == 200
            token = await csrf_token(browser, page)
            embedded.stop()
            response = await browser.post(
                f"/expert/questions/{question.id}/answer",
                data={"answer": "Voilà", "kind": "expertise", "_csrf_token": token},
                follow_redirects=False,
            )
    finally:
        embedded.stop()
    assert response.status_code == 503
    still = await Question.objects().get(Question.id == question.id)
    assert still.status == QuestionStatus.open.value and not still.answer
