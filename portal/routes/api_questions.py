"""JSON API: written questions, the client's side and the expert's."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import msgspec
from litestar import Request, get, post
from litestar.openapi import ResponseSpec
from litestar.params import FromQuery, JSONBody

from portal.accounts.selectors import expert_get
from portal.charter.services import expert_by_slug
from portal.errors import ValidationFailed
from portal.params import JsonId, PathId, Slug
from portal.questions.selectors import questions_of_expert
from portal.questions.services import answer, ask, question_for
from portal.questions.tables import Question
from portal.routes.api_charter import ERRORS, ErrorOut
from portal.web.auth import current_expert, current_user, expert_required, login_required
from portal.web.deps import RedisDep
from portal.web.jobs import trigger


class QuestionIn(msgspec.Struct, forbid_unknown_fields=True):
    body: str
    urgent: bool = False
    key: str | None = None  # send again with the same key: the same question (100 at most)
    # A question of the same thread (a follow-up, priced anew).
    follows: JsonId | None = None
    charter_version: int | None = None  # the version accepted (409 if no longer current)


class QuestionOut(msgspec.Struct):
    id: int
    expert: str
    thread: int  # the id of the thread's first question
    status: str  # open, answered, settled, expired
    body: str
    urgent: bool
    price: int  # credits held in all (answer price + urgency premium); 0: included or free
    premium: int
    included: bool  # paid by the questions included with a booking
    charter_version: int
    sent_at: datetime
    due_at: datetime
    expires_at: datetime
    answer: str | None
    billable: bool | None  # expertise (true) or coordination (false), once answered
    answered_at: datetime | None
    captured: int  # credits debited in the end


def _out(question: Question, expert_slug: str) -> QuestionOut:
    return QuestionOut(
        id=question.id,
        expert=expert_slug,
        thread=question.thread or question.id,
        status=question.status,
        body=question.body,
        urgent=question.urgent,
        price=question.price + question.premium,
        premium=question.premium,
        included=question.included_by is not None,
        charter_version=question.charter_version,
        sent_at=question.sent_at,
        due_at=question.due_at,
        expires_at=question.expires_at,
        answer=question.answer or None,
        billable=question.billable,
        answered_at=question.answered_at,
        captured=question.captured,
    )


async def _slug(question: Question) -> str:
    return (await expert_get(expert_id=question.expert)).slug


@post(
    "/experts/{slug:str}/questions",
    name="api_question_create",
    guards=[login_required],
    status_code=201,
    responses={
        **ERRORS,
        402: ResponseSpec(ErrorOut, description="insufficient_credits (with `missing`)"),
        409: ResponseSpec(ErrorOut, description="charter_changed"),
    },
    tags=["questions"],
)
async def question_create(
    request: Request[Any, Any, Any], slug: Slug, data: JSONBody[QuestionIn]
) -> QuestionOut:
    """Send a question; its price (or the included place) and the urgency premium are held
    until the answer. `due_at` is the reply deadline on the expert's working-hours clock."""
    user = current_user(request)
    assert user is not None
    expert = await expert_by_slug(slug)
    question = await ask(
        client=user,
        expert=expert,
        body=data.body,
        urgent=data.urgent,
        key=data.key or uuid.uuid4().hex,
        charter_version=data.charter_version,
        follows=data.follows,
    )
    return _out(question, expert.slug)


@get(
    "/questions/{question_id:int}",
    name="api_question",
    guards=[login_required],
    responses=ERRORS,
    tags=["questions"],
)
async def question_show(request: Request[Any, Any, Any], question_id: PathId) -> QuestionOut:
    """A question its client or its expert may read (anyone else: 404)."""
    user = current_user(request)
    assert user is not None
    question = await question_for(user=user, question_id=question_id)
    return _out(question, await _slug(question))


@get(
    "/expert/questions",
    name="api_expert_questions",
    guards=[expert_required],
    responses=ERRORS,
    tags=["expert"],
)
async def expert_questions(
    request: Request[Any, Any, Any],
    status: FromQuery[Literal["open", "answered", "settled", "expired"]] = "open",
) -> list[QuestionOut]:
    """The expert's questions with this status (`open` by default), nearest deadline first."""
    expert = await current_expert(request)
    rows = await questions_of_expert(expert_id=expert.id, status=status, limit=500)
    return [_out(q, expert.slug) for q in rows]


class AnswerIn(msgspec.Struct, forbid_unknown_fields=True):
    body: str
    billable: bool  # expertise (billed) or coordination (free)


@post(
    "/expert/questions/{question_id:int}/answer",
    name="api_expert_question_answer",
    guards=[expert_required],
    status_code=200,
    responses={**ERRORS, 409: ResponseSpec(ErrorOut, description="question_closed")},
    tags=["expert"],
)
async def question_answer(
    request: Request[Any, Any, Any],
    question_id: PathId,
    data: JSONBody[AnswerIn],
    redis: RedisDep,
) -> QuestionOut:
    """Answer and classify; the worker then captures (expertise) or releases (coordination)
    the credits; a late urgent answer releases the premium."""
    expert = await current_expert(request)
    try:
        answered = await answer(
            expert=expert, question_id=question_id, body=data.body, billable=data.billable
        )
    except ValidationFailed as exc:  # the request's field is `body`
        raise ValidationFailed({"body": exc.errors.get("answer", "")}) from None
    await trigger(redis, "settle_question", answered.id, job_id=f"question:{answered.id}")
    return _out(answered, expert.slug)


HANDLERS = [question_create, question_show, expert_questions, question_answer]
