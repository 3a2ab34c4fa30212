"""The rules of a charter: one plain structure, validated by a pure function.

A charter says, before any exchange, what each kind of exchange costs in credits and which
policies apply (messages included, urgency, off-hours, cancellation, no-show, booking frame,
credit validity). Nothing here does I/O; services store the rules as JSON.
"""

from __future__ import annotations

import re

import msgspec

from portal.errors import N_
from portal.validation import check_text

DURATIONS = (15, 30, 45)
CHANNELS = ("call", "video")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_PRICE = 1000
MAX_TEXT = 2000

_TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


class Interval(msgspec.Struct, frozen=True):
    """A working period of a weekday, "HH:MM" to "HH:MM" in the charter's time zone."""

    start: str
    end: str

    def minutes(self) -> tuple[int, int]:
        """Minutes since midnight; (0, 0) for a malformed period (validate() reports it)."""
        if not (_TIME_RE.match(self.start) and _TIME_RE.match(self.end)):
            return 0, 0
        return _minutes(self.start), _minutes(self.end)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _default_hours() -> dict[str, list[Interval]]:
    day = [Interval("09:00", "12:30"), Interval("14:00", "18:00")]
    return {weekday: list(day) for weekday in WEEKDAYS[:5]}


class Rules(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Prices in credits, per channel, by duration in minutes (a duration absent: not offered).
    call_prices: dict[int, int] = msgspec.field(default_factory=lambda: {15: 1, 30: 2, 45: 3})
    video_prices: dict[int, int] = msgspec.field(default_factory=lambda: {30: 2, 45: 3})
    # Written questions.
    answer_price: int = 1
    included_messages: int = 2
    included_window_days: int = 7
    # A normal question is answered within this much working time; one left unanswered
    # this many days is released (the client pays nothing) and closed.
    reply_working_hours: int = 16
    question_expiry_days: int = 7
    # Urgency: a reply within `urgent_deadline_minutes` working minutes, for a premium.
    urgent_enabled: bool = True
    urgent_deadline_minutes: int = 60
    urgent_premium: int = 1
    # Working hours drive the reply-deadline clock; off-hours questions wait for the next
    # opening. `off_hours_urgent` says whether urgency may be asked for off-hours too.
    timezone: str = "Europe/Paris"
    working_hours: dict[str, list[Interval]] = msgspec.field(default_factory=_default_hours)
    off_hours_urgent: bool = True
    # Cancellation and no-show (an expert's no-show always releases the credits).
    cancel_free_hours: int = 24
    cancel_late_forfeit_percent: int = 100
    no_show_client_percent: int = 100
    # Booking frame.
    min_notice_hours: int = 12
    horizon_days: int = 60
    buffer_minutes: int = 10
    daily_cap: int = 6  # 0: no cap
    # Credits bought under this charter stay valid this long.
    credit_validity_months: int = 12
    # Words for the client.
    intro: str = ""
    coordination_examples: str = ""
    expertise_examples: str = ""

    def prices(self, channel: str) -> dict[int, int]:
        return self.call_prices if channel == "call" else self.video_prices

    def weekly_working_minutes(self) -> int:
        total = 0
        for intervals in self.working_hours.values():
            for interval in intervals:
                start, end = interval.minutes()
                total += max(0, end - start)
        return total


def encode(rules: Rules) -> str:
    return msgspec.json.encode(rules).decode()


def decode(text: str) -> Rules:
    return msgspec.json.decode(text, type=Rules)


def _valid_timezone(name: str) -> bool:
    from portal.i18n import timezones

    return name in timezones()


def _check_range(
    errors: dict[str, str], field: str, value: int, low: int, high: int, message: str
) -> None:
    if not low <= value <= high:
        errors[field] = message


def _check_prices(rules: Rules, errors: dict[str, str]) -> None:
    for channel in CHANNELS:
        for duration, price in rules.prices(channel).items():
            if duration not in DURATIONS:
                errors[f"{channel}_prices"] = N_("Durations are 15, 30 or 45 minutes.")
            elif not 1 <= price <= MAX_PRICE:
                errors[f"{channel}_{duration}"] = N_(
                    "A price is a whole number of credits from 1 to 1000."
                )
    if not rules.call_prices and not rules.video_prices:
        errors["channels"] = N_("Offer at least one call or video duration.")


def check_periods(intervals: list[Interval]) -> str | None:
    """What is wrong with one day's periods (a message id), or None."""
    previous_end = -1
    for interval in sorted(intervals, key=lambda i: i.start):
        if not (_TIME_RE.match(interval.start) and _TIME_RE.match(interval.end)):
            return N_("Write periods as 09:00-12:30, separated by commas.")
        start, end = interval.minutes()
        if start % 15 or end % 15:
            return N_("Periods start and end on a quarter hour.")
        if start >= end:
            return N_("A period must end after it starts.")
        if start < previous_end:
            return N_("Periods of a day must not overlap.")
        previous_end = end
    return None


def _check_hours(rules: Rules, errors: dict[str, str]) -> None:
    for weekday, intervals in rules.working_hours.items():
        if weekday not in WEEKDAYS:
            errors["working_hours"] = N_("Unknown weekday.")
            continue
        if (problem := check_periods(intervals)) is not None:
            errors[f"hours_{weekday}"] = problem
    if rules.weekly_working_minutes() == 0 and not any(k.startswith("hours_") for k in errors):
        errors["working_hours"] = N_("Set at least one working period in the week.")
        return
    longest = max(
        (
            end - start
            for periods in rules.working_hours.values()
            for start, end in (p.minutes() for p in periods)
        ),
        default=0,
    )
    for channel in CHANNELS:
        for duration in rules.prices(channel):
            if duration in DURATIONS and duration > longest:
                errors.setdefault(
                    f"{channel}_{duration}",
                    N_("No working period is long enough for this duration."),
                )


def validate(rules: Rules) -> dict[str, str]:
    """Field name -> message id, for every rule that cannot be applied. Empty when valid."""
    errors: dict[str, str] = {}
    _check_prices(rules, errors)
    _check_range(
        errors,
        "answer_price",
        rules.answer_price,
        1,
        MAX_PRICE,
        N_("A price is a whole number of credits from 1 to 1000."),
    )
    _check_range(
        errors,
        "included_messages",
        rules.included_messages,
        0,
        50,
        N_("Between 0 and 50 messages."),
    )
    _check_range(
        errors,
        "included_window_days",
        rules.included_window_days,
        1,
        90,
        N_("Between 1 and 90 days."),
    )
    _check_range(
        errors,
        "reply_working_hours",
        rules.reply_working_hours,
        1,
        200,
        N_("Between 1 and 200 hours."),
    )
    _check_range(
        errors,
        "question_expiry_days",
        rules.question_expiry_days,
        1,
        60,
        N_("Between 1 and 60 days."),
    )
    if not _valid_timezone(rules.timezone):
        errors["timezone"] = N_("Choose a time zone from the list.")
    _check_hours(rules, errors)
    week = rules.weekly_working_minutes()
    if week and "reply_working_hours" not in errors and rules.reply_working_hours * 60 > 4 * week:
        errors["reply_working_hours"] = N_("At most four weeks of your working hours.")
    # Checked even when urgency is off: the values are kept for when it is turned on.
    if rules.urgent_deadline_minutes < 15:
        errors["urgent_deadline_minutes"] = N_("At least 15 working minutes.")
    elif week and rules.urgent_deadline_minutes > week:
        errors["urgent_deadline_minutes"] = N_(
            "The deadline cannot be longer than the working week."
        )
    _check_range(
        errors,
        "urgent_premium",
        rules.urgent_premium,
        1,
        MAX_PRICE,
        N_("A price is a whole number of credits from 1 to 1000."),
    )
    _check_range(
        errors, "cancel_free_hours", rules.cancel_free_hours, 0, 720, N_("Between 0 and 720 hours.")
    )
    for field in ("cancel_late_forfeit_percent", "no_show_client_percent"):
        _check_range(
            errors, field, getattr(rules, field), 0, 100, N_("A percentage from 0 to 100.")
        )
    _check_range(
        errors, "min_notice_hours", rules.min_notice_hours, 0, 720, N_("Between 0 and 720 hours.")
    )
    _check_range(errors, "horizon_days", rules.horizon_days, 1, 365, N_("Between 1 and 365 days."))
    if "min_notice_hours" not in errors and rules.min_notice_hours >= rules.horizon_days * 24:
        errors["min_notice_hours"] = N_(
            "The minimum notice must be shorter than the booking horizon."
        )
    _check_range(
        errors, "buffer_minutes", rules.buffer_minutes, 0, 120, N_("Between 0 and 120 minutes.")
    )
    _check_range(
        errors, "daily_cap", rules.daily_cap, 0, 48, N_("Between 0 (no cap) and 48 bookings.")
    )
    _check_range(
        errors,
        "credit_validity_months",
        rules.credit_validity_months,
        1,
        60,
        N_("Between 1 and 60 months."),
    )
    for field in ("intro", "coordination_examples", "expertise_examples"):
        if len(getattr(rules, field)) > MAX_TEXT:
            errors[field] = N_("At most 2000 characters.")
        check_text(errors, field, getattr(rules, field), multiline=True)
    return errors


# --- the editor's form ------------------------------------------------------------------

INT_FIELDS = (
    "answer_price",
    "included_messages",
    "included_window_days",
    "reply_working_hours",
    "question_expiry_days",
    "urgent_deadline_minutes",
    "urgent_premium",
    "cancel_free_hours",
    "cancel_late_forfeit_percent",
    "no_show_client_percent",
    "min_notice_hours",
    "horizon_days",
    "buffer_minutes",
    "daily_cap",
    "credit_validity_months",
)
BOOL_FIELDS = ("urgent_enabled", "off_hours_urgent")
TEXT_FIELDS = ("timezone", "intro", "coordination_examples", "expertise_examples")


def format_hours(intervals: list[Interval]) -> str:
    return ", ".join(f"{i.start}-{i.end}" for i in intervals)


_CLOCK_RE = re.compile(r"^(\d{1,2})(?:[:hH](\d{2})?)?$")


def _clock(text: str) -> str | None:
    """ "9", "9h", "9h30", "09:30" -> "09:30"-style; None when not a time of day."""
    match = _CLOCK_RE.match(text)
    if not match:
        return None
    return f"{int(match.group(1)):02d}:{match.group(2) or '00'}"


def parse_hours(text: str) -> list[Interval] | None:
    """ "09:00-12:30, 14:00-18:00" (or "9h-12h30") -> periods; "" -> none; None if unreadable."""
    intervals = []
    for part in text.replace(";", ",").split(","):
        part = part.replace(" ", "").replace("–", "-").replace("—", "-")
        if not part:
            continue
        start, sep, end = part.partition("-")
        start_clock, end_clock = _clock(start), _clock(end)
        if not sep or start_clock is None or end_clock is None:
            return None
        intervals.append(Interval(start_clock, end_clock))
    return intervals


def to_form(rules: Rules) -> dict[str, str]:
    form: dict[str, str] = {}
    for channel in CHANNELS:
        for duration in DURATIONS:
            price = rules.prices(channel).get(duration)
            form[f"{channel}_{duration}"] = "" if price is None else str(price)
    for field in INT_FIELDS:
        form[field] = str(getattr(rules, field))
    for field in BOOL_FIELDS:
        form[field] = "on" if getattr(rules, field) else ""
    for field in TEXT_FIELDS:
        form[field] = getattr(rules, field)
    for weekday in WEEKDAYS:
        form[f"hours_{weekday}"] = format_hours(rules.working_hours.get(weekday, []))
    return form


def from_form(form: dict[str, str]) -> tuple[Rules | None, dict[str, str]]:
    """Rules from the editor's fields (all strings), with a message id per bad field.

    Unreadable fields are reported together with the rules the readable ones break, so the
    expert corrects everything in one go; the rules are returned only when all is valid.
    """
    errors: dict[str, str] = {}
    defaults = Rules()
    values: dict[str, object] = {}

    def integer(field: str, default: int) -> int:
        raw = form.get(field, "").strip()
        if not re.fullmatch(r"-?[0-9]{1,7}", raw):
            errors[field] = N_("Enter a whole number.")
            return default
        return int(raw)

    for channel in CHANNELS:
        prices: dict[int, int] = {}
        for duration in DURATIONS:
            field = f"{channel}_{duration}"
            if form.get(field, "").strip():
                prices[duration] = integer(field, 1)
        values[f"{channel}_prices"] = prices
    urgent = form.get("urgent_enabled", "") in ("on", "true", "1", "yes")
    for field in INT_FIELDS:
        default = getattr(defaults, field)
        if not urgent and field.startswith("urgent_") and not form.get(field, "").strip():
            values[field] = default  # urgency off: its numbers may be left empty
        else:
            values[field] = integer(field, default)
    for field in BOOL_FIELDS:
        values[field] = form.get(field, "") in ("on", "true", "1", "yes")
    for field in TEXT_FIELDS:
        values[field] = form.get(field, "").strip().replace("\r\n", "\n")
    hours: dict[str, list[Interval]] = {}
    for weekday in WEEKDAYS:
        parsed = parse_hours(form.get(f"hours_{weekday}", ""))
        if parsed is None:
            errors[f"hours_{weekday}"] = N_("Write periods as 09:00-12:30, separated by commas.")
        elif parsed:
            hours[weekday] = parsed
    values["working_hours"] = hours
    rules = Rules(**values)  # type: ignore[arg-type]
    errors = {**validate(rules), **errors}
    return (None if errors else rules), errors


def rule_path(field_name: str) -> str:
    """A form field's place in the rules: "call_30" -> "call_prices.30",
    "hours_mon" -> "working_hours.mon"; other names are the rule itself."""
    channel, _sep, rest = field_name.partition("_")
    if channel in CHANNELS and rest.isdigit():
        return f"{channel}_prices.{rest}"
    if field_name.startswith("hours_"):
        return "working_hours." + field_name.removeprefix("hours_")
    return field_name


def credits_in_money(credits: int, pack_credits: int, pack_price_minor: int) -> int:
    """What `credits` are worth at a pack's price, in minor units, rounded half up."""
    return (2 * credits * pack_price_minor + pack_credits) // (2 * pack_credits)


def money_range(credits: int, packs: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The value of `credits` across packs given as (credits, price_minor): (lowest, highest)."""
    values = [credits_in_money(credits, c, p) for c, p in packs]
    return (min(values), max(values)) if values else None


def parse_amount(text: str) -> int | None:
    """ "135", "135,5", "1 234.50 €" -> minor units (cents); None when not an amount."""
    cleaned = text.replace("€", "").replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
    match = re.fullmatch(r"(\d{1,7})(?:[.,](\d{1,2}))?", cleaned)
    if not match:
        return None
    cents = (match.group(2) or "0").ljust(2, "0")
    return int(match.group(1)) * 100 + int(cents)
