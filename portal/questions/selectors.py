"""Reads of questions that pages and the API need."""

from __future__ import annotations

from typing import Any

from portal.errors import N_, NotFound
from portal.questions.tables import Question, QuestionStatus


async def questions_of_client(*, client_id: int, limit: int = 30) -> list[dict[str, Any]]:
    """The client's latest questions, with their expert's display name."""
    return (
        await Question.select(*Question.all_columns(), Question.expert.display_name)
        .where(Question.client == client_id)
        .order_by(Question.id, ascending=False)
        .limit(limit)
    )


async def questions_of_expert(
    *, expert_id: int, status: str, limit: int | None = None
) -> list[Question]:
    """The expert's questions with this status, the nearest deadline first."""
    query = (
        Question.objects()
        .where((Question.expert == expert_id) & (Question.status == status))
        .order_by(Question.due_at)
    )
    return await (query.limit(limit) if limit is not None else query)


async def inbox_open(*, expert_id: int, limit: int = 200) -> list[dict[str, Any]]:
    """The expert's open questions with their clients' email and name, the nearest
    deadline first."""
    return (
        await Question.select(*Question.all_columns(), Question.client.email, Question.client.name)
        .where((Question.expert == expert_id) & (Question.status == QuestionStatus.open.value))
        .order_by(Question.due_at)
        .limit(limit)
    )


async def inbox_recent(*, expert_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """The expert's latest questions no longer open, with their clients' email and name."""
    return (
        await Question.select(*Question.all_columns(), Question.client.email, Question.client.name)
        .where((Question.expert == expert_id) & (Question.status != QuestionStatus.open.value))
        .order_by(Question.id, ascending=False)
        .limit(limit)
    )


async def question_of_expert(*, expert_id: int, question_id: int) -> Question:
    question = (
        await Question.objects()
        .where((Question.id == question_id) & (Question.expert == expert_id))
        .first()
    )
    if question is None:
        raise NotFound(N_("This question does not exist."))
    return question
