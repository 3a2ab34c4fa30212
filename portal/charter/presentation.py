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


def describe(rules: Rules, field: str) -> str:
    """One rule as short text in the current language."""
    value = getattr(rules, field)
    if field in ("call_prices", "video_prices"):
        offered = [f"{d} min: {value[d]}" for d in DURATIONS if d in value]
        return ", ".join(offered) or i18n.gettext("not offered")
    if field == "working_hours":
        days = [
            f"{i18n.weekday_name(n)} {format_hours(value[day])}"
            for n, day in enumerate(WEEKDAYS)
            if value.get(day)
        ]
        return "; ".join(days)
    if isinstance(value, bool):
        return i18n.gettext("yes") if value else i18n.gettext("no")
    if isinstance(value, str):
        return value or "—"
    return str(value)


def changes(old: Rules | None, new: Rules) -> list[tuple[str, str, str]]:
    """(label, before, after) for every rule that differs; everything for a first version."""
    rows = []
    for field in new.__struct_fields__:
        before = describe(old, field) if old is not None else "—"
        after = describe(new, field)
        if old is None or getattr(old, field) != getattr(new, field):
            rows.append((i18n.gettext(LABELS[field]), before, after))
    return rows
