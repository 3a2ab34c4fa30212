"""Written question pages: asking (price and deadline shown first), the client's thread,
and the expert's inbox and answer form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromQuery
from litestar.plugins.flash import flash

from portal.accounts.tables import Expert, User
from portal.charter.services import expert_by_slug, packs_for, version_current
from portal.credits import ledger
from portal.errors import N_, DomainError, NotFound, ValidationFailed
from portal.i18n import gettext as _
from portal.params import PathId, Slug
from portal.questions import clock
from portal.questions.services import (
    MAX_BODY,
    answer,
    ask,
    clock_inputs_for,
    question_for,
    quote,
    thread_of,
)
from portal.questions.tables import Question, QuestionStatus
from portal.routes.forms import Form, field, see_other, translated
from portal.validation import whole_number
from portal.web.auth import current_expert, current_user, login_required
from portal.web.deps import RedisDep
from portal.web.errors import refusal
from portal.web.jobs import trigger
from portal.web.render import render


async def _ask_context(
    request: Request[Any, Any, Any], expert: Expert, urgent: bool
) -> dict[str, Any]:
    user = current_user(request)
    assert user is not None
    current = await version_current(expert=expert)
    if current is None:
        raise NotFound(N_("This expert has no published charter."))
    try:
        priced = await quote(expert=expert, client=user, urgent=urgent)
        problem = None
    except ValidationFailed as exc:  # urgency not offered (now): quote a normal question
        priced = await quote(expert=expert, client=user, urgent=False)
        problem = _(next(iter(exc.errors.values())))
        urgent = False
    wallet = await ledger.wallet_for(client_id=user.id, expert_id=expert.id)
    available = (await ledger.balance(wallet_id=wallet.id)).available
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


@get("/e/{slug:str}/ask", name="ask", guards=[login_required], include_in_schema=False)
async def ask_page(
    request: Request[Any, Any, Any],
    slug: Slug,
    urgent: FromQuery[str | None] = None,
    follows: FromQuery[str | None] = None,
) -> Response[Any]:
    """The question form; with htmx, only its price and deadline (they change with urgency)."""
    expert = await expert_by_slug(slug)
    context = await _ask_context(request, expert, urgent == "on")
    return render(
        request,
        "pages/questions/ask.html",
        block="quote",
        form={"follows": str(whole_number(follows or "") or "")},
        errors={},
        **context,
    )


@post("/e/{slug:str}/ask", name="ask_submit", guards=[login_required], include_in_schema=False)
async def ask_submit(request: Request[Any, Any, Any], slug: Slug, data: Form) -> Response[Any]:
    user = current_user(request)
    assert user is not None
    expert = await expert_by_slug(slug)
    # Cut far beyond the limit only (memory): the service checks the length exactly.
    form = {
        name: field(data, name, MAX_BODY * 4)
        for name in ("body", "urgent", "key", "charter_version", "follows")
    }
    urgent = form["urgent"] == "on"
    try:
        question = await ask(
            client=user,
            expert=expert,
            body=form["body"],
            urgent=urgent,
            key=form["key"],
            charter_version=whole_number(form["charter_version"]),
            follows=whole_number(form["follows"]),
        )
    except DomainError as exc:
        context = await _ask_context(request, expert, urgent)
        said = refusal(exc)
        context.update(said.extras)
        return render(
            request,
            "pages/questions/ask.html",
            status_code=said.status,
            form=form,
            errors=said.errors,
            problem=said.problem,
            **context,
        )
    return see_other(request.app.route_reverse("question_page", question_id=question.id))


@get(
    "/me/questions/{question_id:int}",
    name="question_page",
    guards=[login_required],
    include_in_schema=False,
)
async def question_page(request: Request[Any, Any, Any], question_id: PathId) -> Response[Any]:
    """The client's thread: each question with its price, deadline, answer and outcome."""
    user = current_user(request)
    assert user is not None
    question = await question_for(user=user, question_id=question_id)
    if question.client != user.id:
        raise NotFound(N_("This question does not exist."))
    expert = await Expert.objects().get(Expert.id == question.expert)
    thread = await thread_of(question)
    return render(
        request,
        "pages/questions/thread.html",
        expert=expert,
        client=user,
        thread=thread,
        first=thread[0],
        viewer="client",
        tz=user.timezone,
    )


def _due_text(due_at: datetime, inputs: dict[str, Any], now: datetime) -> dict[str, Any]:
    """How long the expert has left, in working time (the clock stops off-hours)."""
    overdue = due_at <= now
    left = timedelta(0) if overdue else clock.working_minutes_between(now, due_at, **inputs)
    return {"overdue": overdue, "left": left // timedelta(minutes=1)}


@get("/questions", name="expert_questions")
async def inbox(request: Request[Any, Any, Any]) -> Response[Any]:
    """Open questions, the nearest deadline first, with the working time left (refreshed
    every minute), then the latest answered ones."""
    expert = await current_expert(request)
    now = datetime.now(UTC)
    open_rows = (
        await Question.select(*Question.all_columns(), Question.client.email, Question.client.name)
        .where((Question.expert == expert.id) & (Question.status == QuestionStatus.open.value))
        .order_by(Question.due_at)
        .limit(200)
    )
    inputs = await clock_inputs_for(expert)
    for row in open_rows:
        row.update(_due_text(row["due_at"], inputs, now))
    recent = (
        await Question.select(*Question.all_columns(), Question.client.email, Question.client.name)
        .where((Question.expert == expert.id) & (Question.status != QuestionStatus.open.value))
        .order_by(Question.id, ascending=False)
        .limit(20)
    )
    return render(
        request,
        "pages/questions/inbox.html",
        block="inbox",
        open_questions=open_rows,
        recent=recent,
        tz=inputs["tz"],
    )


@get("/questions/{question_id:int}", name="expert_question")
async def expert_question(request: Request[Any, Any, Any], question_id: PathId) -> Response[Any]:
    expert = await current_expert(request)
    return await _expert_thread(request, expert, await _own(expert, question_id), {}, {})


async def _own(expert: Expert, question_id: int) -> Question:
    question = (
        await Question.objects()
        .where((Question.id == question_id) & (Question.expert == expert.id))
        .first()
    )
    if question is None:
        raise NotFound(N_("This question does not exist."))
    return question


async def _expert_thread(
    request: Request[Any, Any, Any],
    expert: Expert,
    question: Question,
    form: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response[Any]:
    thread = await thread_of(question)
    current = await version_current(expert=expert)
    return render(
        request,
        "pages/questions/thread.html",
        status_code=status_code,
        expert=expert,
        client=await User.objects().get(User.id == question.client),
        thread=thread,
        first=thread[0],
        viewer="expert",
        tz=current.rules.timezone if current else "UTC",
        rules=current.rules if current else None,
        now=datetime.now(UTC),
        form=form,
        errors=translated(errors),
    )


@post("/questions/{question_id:int}/answer", name="expert_question_answer")
async def answer_submit(
    request: Request[Any, Any, Any], question_id: PathId, data: Form, redis: RedisDep
) -> Response[Any]:
    expert = await current_expert(request)
    form = {name: field(data, name, MAX_BODY * 8) for name in ("answer", "kind")}
    try:
        if form["kind"] not in ("expertise", "coordination"):
            raise ValidationFailed({"kind": N_("Say whether it is expertise or coordination.")})
        answered = await answer(
            expert=expert,
            question_id=question_id,
            body=form["answer"],
            billable=form["kind"] == "expertise",
        )
    except ValidationFailed as exc:
        question = await _own(expert, question_id)
        return await _expert_thread(
            request,
            expert,
            question,
            form | {"question": str(question_id)},
            exc.errors,
            refusal(exc).status,
        )
    await trigger(redis, "settle_question", answered.id, job_id=f"question:{answered.id}")
    flash(request, _("Your answer is sent."), "success")
    return see_other(request.app.route_reverse("expert_questions"))


CLIENT_ROUTES = [ask_page, ask_submit, question_page]
EXPERT_HANDLERS = [inbox, expert_question, answer_submit]
