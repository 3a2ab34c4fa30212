"""Rules put into words for the publication review (what changes from version to version)."""

from __future__ import annotations

from portal import i18n
from portal.charter.rules import DURATIONS, WEEKDAYS, Rules, format_hours
from portal.errors import N_

LABELS = {
    "call_prices": N_("Call prices"),
    "video_prices": N_("Video call prices"),
    "answer_price": N_("Price of an expertise answer"),
    "included_messages": N_("Questions included with a call"),
    "included_window_days": N_("Days to use them"),
    "reply_working_hours": N_("Reply time for a question (working hours)"),
    "question_expiry_days": N_("Unanswered questions released after (days)"),
    "urgent_enabled": N_("Urgent questions"),
    "urgent_deadline_minutes": N_("Urgent reply deadline (working minutes)"),
    "urgent_premium": N_("Urgency premium (credits)"),
    "timezone": N_("Time zone"),
    "working_hours": N_("Working hours"),
    "off_hours_urgent": N_("Urgent questions accepted off-hours"),
    "cancel_free_hours": N_("Free cancellation until (hours before)"),
    "cancel_late_forfeit_percent": N_("Late cancellation: share forfeited (%)"),
    "no_show_client_percent": N_("Client no-show: share debited (%)"),
    "min_notice_hours": N_("Minimum notice (hours)"),
    "horizon_days": N_("Booking horizon (days)"),
    "buffer_minutes": N_("Buffer between appointments (minutes)"),
    "daily_cap": N_("Appointments a day at most (0: no cap)"),
    "credit_validity_months": N_("Credit validity (months)"),
    "intro": N_("Introduction"),
    "coordination_examples": N_("Examples of free coordination"),
    "expertise_examples": N_("Examples of billed expertise"),
}


def _prices(prices: dict[int, int]) -> str:
    offered = [
        i18n.gettext("%(minutes)d min: %(credits)s")
        % {
            "minutes": d,
            "credits": i18n.ngettext("%(num)d credit", "%(num)d credits", prices[d])
            % {"num": prices[d]},
        }
        for d in DURATIONS
        if d in prices
    ]
    return ", ".join(offered) or i18n.gettext("not offered")


def describe(rules: Rules, field: str) -> str:
    """One rule as short text in the current language."""
    value = getattr(rules, field)
    if field in ("call_prices", "video_prices"):
        return _prices(value)
    if isinstance(value, bool):
        return i18n.gettext("yes") if value else i18n.gettext("no")
    if isinstance(value, str):
        return value or "—"
    return str(value)


def changes(old: Rules | None, new: Rules) -> list[tuple[str, str, str]]:
    """(label, before, after) for every rule that differs; everything for a first version.
    Working hours are compared day by day, so a changed Saturday is one row."""
    rows = []
    for field in new.__struct_fields__:
        if field == "working_hours":
            rows += _hours_changes(old, new)
            continue
        if old is None or getattr(old, field) != getattr(new, field):
            before = describe(old, field) if old is not None else "—"
            rows.append((i18n.gettext(LABELS[field]), before, describe(new, field)))
    return rows


def _hours_changes(old: Rules | None, new: Rules) -> list[tuple[str, str, str]]:
    rows = []
    for n, day in enumerate(WEEKDAYS):
        after = new.working_hours.get(day, [])
        before = old.working_hours.get(day, []) if old is not None else None
        if before == after:
            continue
        label = f"{i18n.gettext(LABELS['working_hours'])} — {i18n.weekday_name(n)}"
        closed = i18n.gettext("closed")
        rows.append(
            (
                label,
                "—" if before is None else (format_hours(before) or closed),
                format_hours(after) or closed,
            )
        )
    return rows
