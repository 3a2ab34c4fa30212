"""The expert's space: dashboard, charter editor and publication, credit packs."""

from __future__ import annotations

import re
import uuid
from typing import Any

from arq.connections import ArqRedis
from litestar import Request, Response, Router, get, post
from litestar.plugins.flash import flash
from litestar.plugins.htmx import HTMXRequest

from portal.accounts.services import expert_update_profile, user_by_email
from portal.accounts.tables import Expert
from portal.booking.availability import availability_of
from portal.booking.selectors import bookings_upcoming_for, calendars_failing_count
from portal.charter import rules as charter_rules
from portal.charter.presentation import LABELS, changes
from portal.charter.services import (
    charter_publish,
    draft_get,
    draft_save,
    fingerprint,
    pack_create,
    pack_set_active,
    packs_for,
    version_current,
    version_get,
    versions_list,
)
from portal.credits.ledger import InsufficientCredits
from portal.credits.presentation import PURCHASE_STATUS
from portal.credits.services import clients_of, purchases_sold, sales_total, wallet_adjust
from portal.errors import N_, Conflict, ValidationFailed
from portal.i18n import gettext as _
from portal.notify.selectors import notifications_failed_count
from portal.ops import worker_state
from portal.params import PathId
from portal.questions.selectors import questions_of_expert
from portal.questions.tables import QuestionStatus
from portal.routes import expert_booking, questions
from portal.routes.charter import money_table
from portal.routes.forms import Form, field, see_other, translated
from portal.web.auth import current_expert, expert_required
from portal.web.deps import RedisDep
from portal.web.errors import refusal
from portal.web.render import render


def _form_strings(data: dict[str, Any]) -> dict[str, str]:
    return {name: field(data, name, charter_rules.MAX_TEXT + 100) for name in data}


async def _attention(expert: Expert) -> dict[str, int]:
    """What needs the expert's attention: their emails that could not be sent, their other
    calendars that could not be read."""
    return {
        "emails": await notifications_failed_count(user_id=expert.user),
        "calendars": await calendars_failing_count(expert_id=expert.id),
    }


async def _dashboard(
    request: Request[Any, Any, Any],
    expert: Expert,
    redis: ArqRedis,
    errors: dict[str, str],
    status_code: int = 200,
) -> Response[Any]:
    current = await version_current(expert=expert)
    return render(
        request,
        "pages/expert/dashboard.html",
        status_code=status_code,
        expert=expert,
        current=current,
        packs=await packs_for(expert=expert),
        upcoming=await bookings_upcoming_for(expert_id=expert.id),
        waiting=await questions_of_expert(expert_id=expert.id, status=QuestionStatus.open.value),
        expert_tz=(await availability_of(expert)).timezone,
        # Reply deadlines run on the charter's clock, in its zone.
        questions_tz=current.rules.timezone if current else "UTC",
        errors=translated(errors),
        worker=await worker_state(redis),
        attention=await _attention(expert),
    )


@get("/", name="expert_dashboard")
async def dashboard(request: Request[Any, Any, Any], redis: RedisDep) -> Response[Any]:
    return await _dashboard(request, await current_expert(request), redis, {})


@post("/profile", name="expert_profile")
async def profile_save(
    request: Request[Any, Any, Any], data: Form, redis: RedisDep
) -> Response[Any]:
    expert = await current_expert(request)
    try:
        await expert_update_profile(
            expert=expert,
            display_name=field(data, "display_name", 500),
            headline=field(data, "headline", 500),
            bio=field(data, "bio", 5000),
        )
    except ValidationFailed as exc:
        return await _dashboard(request, expert, redis, exc.errors, refusal(exc).status)
    flash(request, _("Your public profile is saved."), "success")
    return see_other(request.app.route_reverse("expert_dashboard"))


async def _editor(
    request: Request[Any, Any, Any],
    expert: Expert,
    form: dict[str, str],
    rules: charter_rules.Rules | None,
    errors: dict[str, str],
    *,
    status_code: int = 200,
) -> Response[Any]:
    packs = await packs_for(expert=expert)
    return render(
        request,
        "pages/expert/charter_edit.html",
        status_code=status_code,
        expert=expert,
        form=form,
        rules=rules,
        errors=translated(errors),
        problems=_problems(errors),
        money=money_table(rules, packs) if rules else {},
        current=await version_current(expert=expert),
        versions=await versions_list(expert=expert),
        weekdays=charter_rules.WEEKDAYS,
        durations=charter_rules.DURATIONS,
    )


@get("/charter", name="expert_charter")
async def charter_edit(request: Request[Any, Any, Any]) -> Response[Any]:
    expert = await current_expert(request)
    rules = await draft_get(expert=expert)
    return await _editor(request, expert, charter_rules.to_form(rules), rules, {})


@post("/charter", name="expert_charter_save")
async def charter_save(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    expert = await current_expert(request)
    form = _form_strings(data)
    rules, errors = charter_rules.from_form(form)
    if errors or rules is None:
        return await _editor(request, expert, form, None, errors, status_code=422)
    await draft_save(expert=expert, rules=rules)
    if field(data, "then") == "review":
        return see_other(request.app.route_reverse("expert_charter_review"))
    flash(request, _("Draft saved. Clients still see the published version."), "success")
    return see_other(request.app.route_reverse("expert_charter"))


@post("/charter/preview", name="expert_charter_preview")
async def charter_preview(request: HTMXRequest, data: Form) -> Response[Any]:
    """The charter as clients would read it, from the form being typed (nothing saved)."""
    expert = await current_expert(request)
    form = _form_strings(data)
    rules, errors = charter_rules.from_form(form)
    if not request.htmx:  # without JavaScript: the whole editor, as it was typed
        return await _editor(request, expert, form, rules, errors)
    packs = await packs_for(expert=expert)
    return render(
        request,
        "pages/expert/charter_edit.html",
        block="preview",
        rules=rules,
        money=money_table(rules, packs) if rules else {},
        problems=_problems(errors),
    )


def _problems(errors: dict[str, str]) -> list[tuple[str, str]]:
    """(field label, message) for the preview's list of what to correct."""
    return [
        (_(LABELS.get(charter_rules.rule_path(name).partition(".")[0], name)), _(message))
        for name, message in errors.items()
    ]


@get("/charter/publish", name="expert_charter_review")
async def charter_review(request: Request[Any, Any, Any]) -> Response[Any]:
    expert = await current_expert(request)
    draft = await draft_get(expert=expert)
    current = await version_current(expert=expert)
    return render(
        request,
        "pages/expert/charter_publish.html",
        expert=expert,
        current=current,
        rows=changes(current.rules if current else None, draft),
        errors=translated(charter_rules.validate(draft)),
        reviewed=fingerprint(draft),
    )


@post("/charter/publish", name="expert_charter_publish")
async def charter_publish_handler(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    expert = await current_expert(request)
    try:
        published = await charter_publish(expert=expert, reviewed=field(data, "reviewed", 64))
    except Conflict as exc:
        flash(request, _(exc.message), "error")
        return see_other(request.app.route_reverse("expert_charter_review"))
    flash(request, _("Version %(number)d is published.") % {"number": published.number}, "success")
    return see_other(request.app.route_reverse("expert_charter"))


@get("/charter/versions/{number:int}", name="expert_charter_version")
async def charter_version(request: Request[Any, Any, Any], number: PathId) -> Response[Any]:
    expert = await current_expert(request)
    version = await version_get(expert=expert, number=number)
    return render(
        request,
        "pages/expert/charter_version.html",
        expert=expert,
        version=version,
        money=money_table(version.rules, await packs_for(expert=expert)),
    )


@get("/clients", name="expert_clients")
async def clients_page(request: Request[Any, Any, Any]) -> Response[Any]:
    expert = await current_expert(request)
    return await _clients(request, expert, {}, {})


async def _clients(
    request: Request[Any, Any, Any],
    expert: Expert,
    form: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response[Any]:
    return render(
        request,
        "pages/expert/clients.html",
        status_code=status_code,
        clients=await clients_of(expert_id=expert.id),
        purchases=await purchases_sold(expert_id=expert.id),
        sales=await sales_total(expert_id=expert.id),
        purchase_status=PURCHASE_STATUS,
        form=form,
        errors=translated(errors),
    )


@post("/clients/adjust", name="expert_clients_adjust")
async def clients_adjust(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    """Give or take back credits, with a reason the client reads in their history."""
    expert = await current_expert(request)
    form = {name: field(data, name, 400) for name in ("email", "credits", "reason", "key")}
    raw = form["credits"].strip()
    credits = int(raw) if re.fullmatch(r"[+-]?[0-9]{1,6}", raw) else 0
    try:
        client = await user_by_email(form["email"])
        if client is None:
            raise ValidationFailed({"email": N_("No client has this email.")})
        current = await version_current(expert=expert)
        await wallet_adjust(
            client_id=client.id,
            expert_id=expert.id,
            credits=credits,
            reason=form["reason"],
            validity_months=current.rules.credit_validity_months if current else 12,
            key=f"expert:{expert.id}:{form['key'] or uuid.uuid4().hex}",
        )
    except InsufficientCredits:  # said as a field of the form
        refused = ValidationFailed(
            {"credits": N_("This client has fewer credits available than that.")}
        )
        return await _clients(request, expert, form, refused.errors, refusal(refused).status)
    except ValidationFailed as exc:
        return await _clients(request, expert, form, exc.errors, refusal(exc).status)
    flash(request, _("The client's credits are adjusted."), "success")
    return see_other(request.app.route_reverse("expert_clients"))


def _packs_page(
    request: Request[Any, Any, Any],
    packs: list[Any],
    form: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response[Any]:
    return render(
        request,
        "pages/expert/packs.html",
        packs=packs,
        form=form,
        errors=translated(errors),
        status_code=status_code,
    )


@get("/packs", name="expert_packs")
async def packs_page(request: Request[Any, Any, Any]) -> Response[Any]:
    expert = await current_expert(request)
    return _packs_page(request, await packs_for(expert=expert, active_only=False), {}, {})


@post("/packs", name="expert_pack_create")
async def pack_create_handler(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    expert = await current_expert(request)
    form = {name: field(data, name, 100) for name in ("name", "credits", "price")}
    price_minor = charter_rules.parse_amount(form["price"]) or 0  # 0 is refused with a message
    credits = int(form["credits"]) if re.fullmatch(r"[0-9]{1,6}", form["credits"].strip()) else 0
    try:
        await pack_create(
            expert=expert, name=form["name"], credits=credits, price_minor=price_minor
        )
    except ValidationFailed as exc:
        packs = await packs_for(expert=expert, active_only=False)
        return _packs_page(request, packs, form, exc.errors, refusal(exc).status)
    flash(request, _("The pack is on sale."), "success")
    return see_other(request.app.route_reverse("expert_packs"))


@post("/packs/{pack_id:int}/archive", name="expert_pack_archive")
async def pack_archive(request: Request[Any, Any, Any], pack_id: PathId) -> Response[Any]:
    await pack_set_active(expert=await current_expert(request), pack_id=pack_id, active=False)
    flash(
        request,
        _("The pack is archived: it is no longer sold. Credits already bought are kept."),
        "info",
    )
    return see_other(request.app.route_reverse("expert_packs"))


@post("/packs/{pack_id:int}/restore", name="expert_pack_restore")
async def pack_restore(request: Request[Any, Any, Any], pack_id: PathId) -> Response[Any]:
    await pack_set_active(expert=await current_expert(request), pack_id=pack_id, active=True)
    flash(request, _("The pack is on sale again."), "success")
    return see_other(request.app.route_reverse("expert_packs"))


router = Router(
    path="/expert",
    route_handlers=[
        dashboard,
        profile_save,
        charter_edit,
        charter_save,
        charter_preview,
        charter_review,
        charter_publish_handler,
        charter_version,
        packs_page,
        pack_create_handler,
        pack_archive,
        pack_restore,
        clients_page,
        clients_adjust,
        *expert_booking.HANDLERS,
        *questions.EXPERT_HANDLERS,
    ],
    guards=[expert_required],
    include_in_schema=False,
)
