"""Questions in plain words, and what each question page shows: one view function per page
that assembles several things (the charter, the quote, the wallet, the thread)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from portal import i18n
from portal.accounts.selectors import expert_get, user_get
from portal.accounts.tables import Expert, User
from portal.charter.services import packs_for, version_current
from portal.credits.selectors import credits_available
from portal.errors import N_, NotFound, ValidationFailed
from portal.questions import clock
from portal.questions.selectors import inbox_open, inbox_recent
from portal.questions.services import MAX_BODY, clock_inputs_for, question_for, quote, thread_of
from portal.questions.tables import Question

QUESTION_STATUS = {
    "open": N_("waiting for the answer"),
    "answered": N_("answered"),
    "settled": N_("answered"),
    "expired": N_("closed unanswered"),
}


async def ask_view(*, expert: Expert, client: User, urgent: bool) -> dict[str, Any]:
    """The question form: its price and deadline (a normal question's when urgency is not
    offered now, saying why), and what the client has to pay for it."""
    current = await version_current(expert=expert)
    if current is None:
        raise NotFound(N_("This expert has no published charter."))
    try:
        priced = await quote(expert=expert, client=client, urgent=urgent)
        problem = None
    except ValidationFailed as exc:  # urgency not offered (now): quote a normal question
        priced = await quote(expert=expert, client=client, urgent=False)
        problem = i18n.gettext(next(iter(exc.errors.values())))
        urgent = False
    available = await credits_available(client_id=client.id, expert_id=expert.id)
    return {
        "expert": expert,
        "version": current,
        "rules": current.rules,
        "quote": priced,
        "urgent": urgent,
        "urgent_problem": problem,
        "available": available,
        "missing": max(0, priced.total - available),
        "packs": await packs_for(expert=expert),
        "max_body": MAX_BODY,
    }


async def client_thread_view(*, client: User, question_id: int) -> dict[str, Any]:
    """The client's thread: each question with its price, deadline, answer and outcome."""
    question = await question_for(user=client, question_id=question_id)
    if question.client != client.id:
        raise NotFound(N_("This question does not exist."))
    expert = await expert_get(expert_id=question.expert)
    thread = await thread_of(question)
    return {
        "expert": expert,
        "client": client,
        "thread": thread,
        "first": thread[0],
        "viewer": "client",
        "tz": client.timezone,
    }


def _due_text(due_at: datetime, inputs: dict[str, Any], now: datetime) -> dict[str, Any]:
    """How long the expert has left, in working time (the clock stops off-hours)."""
    overdue = due_at <= now
    left = timedelta(0) if overdue else clock.working_minutes_between(now, due_at, **inputs)
    return {"overdue": overdue, "left": left // timedelta(minutes=1)}


async def inbox_view(*, expert: Expert) -> dict[str, Any]:
    """Open questions, the nearest deadline first, with the working time left, then the
    latest answered ones."""
    now = datetime.now(UTC)
    open_rows = await inbox_open(expert_id=expert.id)
    inputs = await clock_inputs_for(expert)
    for row in open_rows:
        row.update(_due_text(row["due_at"], inputs, now))
    return {
        "open_questions": open_rows,
        "recent": await inbox_recent(expert_id=expert.id),
        "tz": inputs["tz"],
    }


async def expert_thread_view(*, expert: Expert, question: Question) -> dict[str, Any]:
    """The expert's view of a thread, to answer its open question."""
    thread = await thread_of(question)
    current = await version_current(expert=expert)
    return {
        "expert": expert,
        "client": await user_get(user_id=question.client),
        "thread": thread,
        "first": thread[0],
        "viewer": "expert",
        "tz": current.rules.timezone if current else "UTC",
        "rules": current.rules if current else None,
        "now": datetime.now(UTC),
    }
