"""Written question pages: asking (price and deadline shown first), the client's thread,
and the expert's inbox and answer form."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromQuery
from litestar.plugins.flash import flash

from portal.accounts.tables import Expert, User
from portal.charter.services import expert_by_slug
from portal.errors import N_, DomainError, ValidationFailed
from portal.i18n import gettext as _
from portal.params import PathId, Slug
from portal.questions.presentation import (
    ask_view,
    client_thread_view,
    expert_thread_view,
    inbox_view,
)
from portal.questions.selectors import question_of_expert
from portal.questions.services import MAX_BODY, answer, ask
from portal.questions.tables import Question
from portal.routes.forms import Form, field, see_other, translated
from portal.validation import whole_number
from portal.web.auth import current_expert, login_required, signed_in_user
from portal.web.deps import RedisDep
from portal.web.errors import refusal
from portal.web.jobs import trigger
from portal.web.render import render

ASK_FIELDS = ("body", "urgent", "key", "charter_version", "follows")


@get("/e/{slug:str}/ask", name="ask", guards=[login_required], include_in_schema=False)
async def ask_page(
    request: Request[Any, Any, Any],
    slug: Slug,
    urgent: FromQuery[str | None] = None,
    follows: FromQuery[str | None] = None,
) -> Response[Any]:
    """The question form; with htmx, only its price and deadline (they change with urgency)."""
    expert = await expert_by_slug(slug)
    context = await ask_view(expert=expert, client=signed_in_user(request), urgent=urgent == "on")
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
    user = signed_in_user(request)
    expert = await expert_by_slug(slug)
    # Cut far beyond the limit only (memory): the service checks the length exactly.
    form = {name: field(data, name, MAX_BODY * 4) for name in ASK_FIELDS}
    try:
        question = await ask(
            client=user,
            expert=expert,
            body=form["body"],
            urgent=form["urgent"] == "on",
            key=form["key"],
            charter_version=whole_number(form["charter_version"]),
            follows=whole_number(form["follows"]),
        )
    except DomainError as exc:
        return await _ask_refused(request, expert, user, form, exc)
    return see_other(request.app.route_reverse("question_page", question_id=question.id))


async def _ask_refused(
    request: Request[Any, Any, Any],
    expert: Expert,
    user: User,
    form: dict[str, str],
    exc: DomainError,
) -> Response[Any]:
    """The form again, with what was typed and why the question was refused."""
    context = await ask_view(expert=expert, client=user, urgent=form["urgent"] == "on")
    said = refusal(exc)
    context.update(said.extras)  # `missing`: the credits still needed, as the service counted
    return render(
        request,
        "pages/questions/ask.html",
        status_code=said.status,
        form=form,
        errors=said.errors,
        problem=said.problem,
        **context,
    )


@get(
    "/me/questions/{question_id:int}",
    name="question_page",
    guards=[login_required],
    include_in_schema=False,
)
async def question_page(request: Request[Any, Any, Any], question_id: PathId) -> Response[Any]:
    """The client's thread: each question with its price, deadline, answer and outcome."""
    context = await client_thread_view(client=signed_in_user(request), question_id=question_id)
    return render(request, "pages/questions/thread.html", **context)


@get("/questions", name="expert_questions")
async def inbox(request: Request[Any, Any, Any]) -> Response[Any]:
    """Open questions, the nearest deadline first, with the working time left (refreshed
    every minute), then the latest answered ones."""
    context = await inbox_view(expert=await current_expert(request))
    return render(request, "pages/questions/inbox.html", block="inbox", **context)


@get("/questions/{question_id:int}", name="expert_question")
async def expert_question(request: Request[Any, Any, Any], question_id: PathId) -> Response[Any]:
    expert = await current_expert(request)
    question = await question_of_expert(expert_id=expert.id, question_id=question_id)
    return await _expert_thread(request, expert, question, {}, {})


async def _expert_thread(
    request: Request[Any, Any, Any],
    expert: Expert,
    question: Question,
    form: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response[Any]:
    return render(
        request,
        "pages/questions/thread.html",
        status_code=status_code,
        form=form,
        errors=translated(errors),
        **await expert_thread_view(expert=expert, question=question),
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
        question = await question_of_expert(expert_id=expert.id, question_id=question_id)
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
