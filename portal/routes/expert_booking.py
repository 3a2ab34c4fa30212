"""The expert's booking pages: availability (weekly hours, dates, calendars, how calls and
video calls happen, the private feed) and the schedule (day and week), with cancellation
and no-shows."""

from __future__ import annotations

from datetime import date
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromQuery
from litestar.plugins.flash import flash

from portal.accounts.tables import Expert
from portal.booking.availability import (
    AvailabilityForm,
    availability_of,
    availability_save,
    calendar_add,
    calendar_delete,
    feed_token_rotate,
    form_of,
    override_delete,
    override_set,
)
from portal.booking.presentation import availability_view, schedule_view
from portal.booking.services import (
    booking_cancel,
    booking_contest_decide,
    booking_no_show,
    booking_of_expert,
)
from portal.charter.rules import WEEKDAYS
from portal.errors import N_, ValidationFailed
from portal.i18n import gettext as _
from portal.params import PathId
from portal.routes.forms import Form, field, see_other, translated
from portal.web.auth import current_expert
from portal.web.deps import RedisDep
from portal.web.errors import refusal
from portal.web.jobs import trigger
from portal.web.render import render


async def _availability_page(
    request: Request[Any, Any, Any],
    expert: Expert,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response[Any]:
    context = await availability_view(expert=expert)
    context["form"] = form or context["form"]  # as typed, when shown again
    feed = f"{context['availability'].feed_token}.ics"
    return render(
        request,
        "pages/expert/availability.html",
        status_code=status_code,
        errors=translated(errors or {}),
        **context,
        feed_url=request.app.state.settings.base_url
        + request.app.route_reverse("expert_feed", filename=feed),
    )


@get("/availability", name="expert_availability")
async def availability_page(request: Request[Any, Any, Any]) -> Response[Any]:
    return await _availability_page(request, await current_expert(request))


@post("/availability", name="expert_availability_save")
async def availability_submit(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    expert = await current_expert(request)
    form = {name: field(data, name, 500) for name in data}
    try:
        await availability_save(
            expert,
            AvailabilityForm(
                timezone=form.get("timezone", ""),
                hours={day: form.get(f"hours_{day}", "") for day in WEEKDAYS},
                call_mode=form.get("call_mode", ""),
                phone=form.get("phone", ""),
                meeting_url=form.get("meeting_url", ""),
            ),
        )
    except ValidationFailed as exc:
        return await _availability_page(
            request, expert, form=form, errors=exc.errors, status_code=refusal(exc).status
        )
    flash(request, _("Your availability is saved."), "success")
    return see_other(request.app.route_reverse("expert_availability"))


@post("/availability/dates", name="expert_override_save")
async def override_submit(request: Request[Any, Any, Any], data: Form) -> Response[Any]:
    expert = await current_expert(request)
    form = {name: field(data, name, 200) for name in ("day", "hours", "note")}
    try:
        try:
            day = date.fromisoformat(form["day"])
        except ValueError:
            raise ValidationFailed({"day": N_("Choose a date.")}) from None
        await override_set(expert, day=day, hours=form["hours"], note=form["note"])
    except ValidationFailed as exc:
        errors = {f"override_{k}": v for k, v in exc.errors.items()}
        merged = form_of(await availability_of(expert)) | {
            f"override_{k}": v for k, v in form.items()
        }
        return await _availability_page(
            request, expert, form=merged, errors=errors, status_code=refusal(exc).status
        )
    flash(request, _("The date is saved."), "success")
    return see_other(request.app.route_reverse("expert_availability"))


@post("/availability/dates/{override_id:int}/delete", name="expert_override_delete")
async def override_remove(request: Request[Any, Any, Any], override_id: PathId) -> Response[Any]:
    await override_delete(await current_expert(request), override_id)
    flash(request, _("The date follows your weekly hours again."), "success")
    return see_other(request.app.route_reverse("expert_availability"))


@post("/availability/calendars", name="expert_calendar_add")
async def calendar_submit(
    request: Request[Any, Any, Any], data: Form, redis: RedisDep
) -> Response[Any]:
    expert = await current_expert(request)
    form = {name: field(data, name, 2100) for name in ("url", "name")}
    try:
        calendar = await calendar_add(expert, url=form["url"], name=form["name"])
        # Read it now rather than at the next round (which would read it anyway). The job id
        # names this row: a deleted calendar's id may come back while arq still keeps the
        # id of its last read (an hour), which would refuse the job.
        made = calendar.created_at.timestamp()
        await trigger(redis, "sync_calendar", calendar.id, job_id=f"calendar:{calendar.id}:{made}")
    except ValidationFailed as exc:
        errors = {f"calendar_{k}": v for k, v in exc.errors.items()}
        merged = form_of(await availability_of(expert)) | {
            f"calendar_{k}": v for k, v in form.items()
        }
        return await _availability_page(
            request, expert, form=merged, errors=errors, status_code=refusal(exc).status
        )
    flash(
        request, _("The calendar is added: its busy times are read within 15 minutes."), "success"
    )
    return see_other(request.app.route_reverse("expert_availability"))


@post("/availability/calendars/{calendar_id:int}/delete", name="expert_calendar_delete")
async def calendar_remove(request: Request[Any, Any, Any], calendar_id: PathId) -> Response[Any]:
    await calendar_delete(await current_expert(request), calendar_id)
    flash(request, _("The calendar is removed."), "success")
    return see_other(request.app.route_reverse("expert_availability"))


@post("/availability/feed", name="expert_feed_rotate")
async def feed_rotate(request: Request[Any, Any, Any]) -> Response[Any]:
    await feed_token_rotate(await current_expert(request))
    flash(request, _("Your calendar has a new address; the old one no longer works."), "success")
    return see_other(request.app.route_reverse("expert_availability"))


@get("/schedule", name="expert_schedule")
async def schedule_page(
    request: Request[Any, Any, Any],
    day: FromQuery[str | None] = None,
    view: FromQuery[str] = "week",
) -> Response[Any]:
    context = await schedule_view(expert=await current_expert(request), day=day, view=view)
    return render(request, "pages/expert/schedule.html", **context)


@post("/bookings/{booking_id:int}/cancel", name="expert_booking_cancel")
async def expert_cancel(
    request: Request[Any, Any, Any], booking_id: PathId, data: Form
) -> Response[Any]:
    """Cancel with a reason (the client reads it): always free for the client."""
    expert = await current_expert(request)
    booking = await booking_of_expert(expert_id=expert.id, booking_id=booking_id)
    try:
        await booking_cancel(booking=booking, by_expert=True, reason=field(data, "reason", 2000))
    except ValidationFailed as exc:
        flash(request, " ".join(refusal(exc).errors.values()), "error")
    else:
        flash(request, _("The booking is cancelled; the client's credits are released."), "success")
    return see_other(request.app.route_reverse("expert_schedule"))


@post("/bookings/{booking_id:int}/no-show", name="expert_booking_no_show")
async def expert_no_show(
    request: Request[Any, Any, Any], booking_id: PathId, data: Form
) -> Response[Any]:
    expert = await current_expert(request)
    booking = await booking_of_expert(expert_id=expert.id, booking_id=booking_id)
    absent = field(data, "absent", 10)
    if absent not in ("client", "expert"):
        raise ValidationFailed({"absent": N_("Say who did not come: client or expert.")})
    await booking_no_show(booking=booking, client_absent=absent == "client")
    flash(request, _("Recorded."), "success")
    return see_other(request.app.route_reverse("expert_schedule"))


@post("/bookings/{booking_id:int}/contest", name="expert_contest_decide")
async def expert_contest_decide(
    request: Request[Any, Any, Any], booking_id: PathId, data: Form
) -> Response[Any]:
    """Answer a client's contest of their no-show: accept (credits given back) or keep."""
    expert = await current_expert(request)
    booking = await booking_of_expert(expert_id=expert.id, booking_id=booking_id)
    try:
        decided = await booking_contest_decide(
            booking=booking,
            accept=field(data, "accept") == "yes",
            reply=field(data, "reply", 2000),
        )
    except ValidationFailed as exc:
        flash(request, " ".join(refusal(exc).errors.values()), "error")
        return see_other(request.app.route_reverse("expert_schedule"))
    if decided.contest_decision == "accepted":
        flash(request, _("Contest accepted: the client's credits are given back."), "success")
    else:
        flash(request, _("The no-show stands: the client is told."), "success")
    return see_other(request.app.route_reverse("expert_schedule"))


HANDLERS = [
    availability_page,
    availability_submit,
    override_submit,
    override_remove,
    calendar_submit,
    calendar_remove,
    feed_rotate,
    schedule_page,
    expert_cancel,
    expert_no_show,
    expert_contest_decide,
]
