from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal import i18n
from portal.charter import rules as r
from portal.charter.presentation import changes
from portal.charter.rules import DURATIONS, WEEKDAYS, Interval, Rules
from portal.validation import SEPARATORS_AND_BIDI

prices = st.dictionaries(st.sampled_from(DURATIONS), st.integers(1, r.MAX_PRICE), max_size=3)


@st.composite
def day(draw: st.DrawFn) -> list[Interval]:
    """Non-overlapping quarter-hour periods inside one day."""
    marks = sorted(draw(st.sets(st.integers(0, 96), min_size=0, max_size=6)))
    if len(marks) % 2:
        marks = marks[:-1]
    periods = []
    for start, end in zip(marks[::2], marks[1::2], strict=True):
        periods.append(
            Interval(
                f"{start * 15 // 60:02d}:{start * 15 % 60:02d}",
                f"{end * 15 // 60:02d}:{end * 15 % 60:02d}",
            )
        )
    return periods


@st.composite
def valid_rules(draw: st.DrawFn) -> Rules:
    hours = {d: draw(day()) for d in draw(st.sets(st.sampled_from(WEEKDAYS), min_size=1))}
    hours = {d: periods for d, periods in hours.items() if periods}
    if not hours:
        hours = {"mon": [Interval("09:00", "12:00")]}
    week = sum(e - s for periods in hours.values() for s, e in (p.minutes() for p in periods))
    longest = max(e - s for periods in hours.values() for s, e in (p.minutes() for p in periods))
    # Only durations that fit in a working period can be offered.
    call = {d: p for d, p in draw(prices).items() if d <= longest}
    video = {d: p for d, p in draw(prices).items() if d <= longest}
    if not call and not video:
        call = {15: 1}
    horizon = draw(st.integers(1, 365))
    return Rules(
        call_prices=call,
        video_prices=video,
        answer_price=draw(st.integers(1, r.MAX_PRICE)),
        included_messages=draw(st.integers(0, 50)),
        included_window_days=draw(st.integers(1, 90)),
        reply_working_hours=draw(st.integers(1, max(1, min(200, 4 * week // 60)))),
        question_expiry_days=draw(st.integers(1, 60)),
        urgent_enabled=draw(st.booleans()),
        urgent_deadline_minutes=draw(st.integers(15, max(15, week))),
        urgent_premium=draw(st.integers(1, r.MAX_PRICE)),
        timezone=draw(
            st.sampled_from(["Europe/Paris", "America/Toronto", "Pacific/Noumea", "UTC"])
        ),
        working_hours=hours,
        off_hours_urgent=draw(st.booleans()),
        cancel_free_hours=draw(st.integers(0, 720)),
        cancel_late_forfeit_percent=draw(st.integers(0, 100)),
        no_show_client_percent=draw(st.integers(0, 100)),
        min_notice_hours=draw(st.integers(0, min(720, horizon * 24 - 1))),
        horizon_days=horizon,
        buffer_minutes=draw(st.integers(0, 120)),
        daily_cap=draw(st.integers(0, 48)),
        credit_validity_months=draw(st.integers(1, 60)),
        # The form normalises line ends to "\n" (as browsers send "\r\n"); texts here have none.
        # Text as a form can send it and a charter keeps: any character but lone surrogates
        # (not UTF-8) and those no text may hold (line breaks and tabs are kept).
        intro=draw(
            st.text(
                st.characters(
                    exclude_categories=("Cs", "Cc"),
                    exclude_characters=SEPARATORS_AND_BIDI,
                    include_characters="\n\t",
                ),
                max_size=50,
            )
        ).strip(),
    )


def test_the_default_charter_is_valid() -> None:
    assert r.validate(Rules()) == {}


@given(valid_rules())
def test_generated_valid_rules_validate(rules: Rules) -> None:
    assert r.validate(rules) == {}


@given(valid_rules())
def test_json_and_form_round_trips_keep_every_rule(rules: Rules) -> None:
    assert r.decode(r.encode(rules)) == rules
    parsed, errors = r.from_form(r.to_form(rules))
    assert errors == {}
    assert parsed == rules


@given(
    valid_rules(),
    st.integers(1, 120).filter(lambda d: d not in DURATIONS),
    st.sampled_from(r.CHANNELS),
)
def test_a_duration_outside_15_30_45_is_refused(rules: Rules, duration: int, channel: str) -> None:
    bad = msgspec.structs.replace(rules, **{f"{channel}_prices": {duration: 1}})
    assert f"{channel}_prices" in r.validate(bad)


@given(
    valid_rules(),
    st.integers(-1000, 0) | st.integers(r.MAX_PRICE + 1, 10**6),
    st.sampled_from(DURATIONS),
)
def test_prices_must_be_positive_and_bounded(rules: Rules, price: int, duration: int) -> None:
    bad = msgspec.structs.replace(rules, call_prices={duration: price})
    assert f"call_{duration}" in r.validate(bad)
    bad = msgspec.structs.replace(rules, answer_price=price)
    assert "answer_price" in r.validate(bad)


@given(
    valid_rules(),
    st.integers(-500, -1) | st.integers(101, 500),
    st.sampled_from(["cancel_late_forfeit_percent", "no_show_client_percent"]),
)
def test_percentages_stay_within_0_and_100(rules: Rules, percent: int, field: str) -> None:
    assert field in r.validate(msgspec.structs.replace(rules, **{field: percent}))


@given(valid_rules(), st.integers(1, 5000))
def test_urgent_deadline_cannot_exceed_the_working_week(rules: Rules, extra: int) -> None:
    week = rules.weekly_working_minutes()
    bad = msgspec.structs.replace(rules, urgent_enabled=True, urgent_deadline_minutes=week + extra)
    assert r.validate(bad)["urgent_deadline_minutes"] == (
        "The deadline cannot be longer than the working week."
    )


def test_no_channel_at_all_is_refused() -> None:
    errors = r.validate(Rules(call_prices={}, video_prices={}))
    assert errors == {"channels": "Offer at least one call or video duration."}


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("9h-12h", None, None),
        ("9H-12H00", None, None),
        ("9:00 — 12:00", None, None),
        ("09:00-08:00", "hours_mon", "A period must end after it starts."),
        ("09:00-12:00, 11:00-13:00", "hours_mon", "Periods of a day must not overlap."),
        ("09:10-12:00", "hours_mon", "Periods start and end on a quarter hour."),
        ("nine to five", "hours_mon", "Write periods as 09:00-12:30, separated by commas."),
        ("25:00-26:00", "hours_mon", "Write periods as 09:00-12:30, separated by commas."),
    ],
)
def test_working_hours_from_the_form(text: str, field: str | None, message: str | None) -> None:
    form = r.to_form(Rules())
    form["hours_mon"] = text
    rules, errors = r.from_form(form)
    if field is None:
        assert errors == {} and rules is not None
        assert rules.working_hours["mon"] == [Interval("09:00", "12:00")]
    else:
        assert errors.get(field) == message


def test_form_reports_every_error_at_once() -> None:
    form = r.to_form(Rules())
    form.update(
        call_30="two",
        daily_cap="",
        video_15="",
        cancel_late_forfeit_percent="150",
        hours_tue="18:00-09:00",
    )
    rules, errors = r.from_form(form)
    assert rules is None
    assert errors == {
        "call_30": "Enter a whole number.",
        "daily_cap": "Enter a whole number.",
        "cancel_late_forfeit_percent": "A percentage from 0 to 100.",
        "hours_tue": "A period must end after it starts.",
    }


def test_urgency_off_leaves_its_numbers_optional() -> None:
    form = r.to_form(Rules())
    form.update(urgent_enabled="", urgent_deadline_minutes="", urgent_premium="")
    rules, errors = r.from_form(form)
    assert errors == {} and rules is not None and rules.urgent_enabled is False


def test_rules_that_could_never_be_booked_are_refused() -> None:
    errors = r.validate(Rules(min_notice_hours=48, horizon_days=2))
    assert errors == {
        "min_notice_hours": "The minimum notice must be shorter than the booking horizon."
    }
    short = Rules(working_hours={"mon": [Interval("09:00", "09:30")]}, urgent_deadline_minutes=30)
    assert r.validate(short) == {
        "call_45": "No working period is long enough for this duration.",
        "video_45": "No working period is long enough for this duration.",
        # 16 hours to answer, with 30 minutes of work a week: more than four weeks.
        "reply_working_hours": "At most four weeks of your working hours.",
    }
    for zone in ("localtime", "Factory", "US/Eastern"):
        assert "timezone" in r.validate(Rules(timezone=zone))


def test_a_week_with_no_working_period_is_refused() -> None:
    form = r.to_form(Rules())
    for weekday in WEEKDAYS:
        form[f"hours_{weekday}"] = ""
    _, errors = r.from_form(form)
    assert errors["working_hours"] == "Set at least one working period in the week."


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("420", 420_00),
        ("420,5", 420_50),
        ("1 234.56 €", 1234_56),
        ("0,01", 1),
        ("abc", None),
        ("1,234", None),
        ("", None),
        ("-5", None),
    ],
)
def test_amounts_in_euros(text: str, cents: int | None) -> None:
    assert r.parse_amount(text) == cents


def test_credits_are_valued_at_the_pack_price_exactly() -> None:
    assert r.credits_in_money(2, 10, 400_00) == 80_00
    assert r.credits_in_money(1, 3, 100_00) == 33_33  # 33.333… rounds down
    assert r.credits_in_money(2, 3, 100_00) == 66_67  # 66.666… rounds up
    assert r.money_range(2, [(10, 400_00), (3, 135_00)]) == (80_00, 90_00)
    assert r.money_range(2, []) is None


def test_changes_name_what_differs() -> None:
    i18n.activate("en")
    before = Rules()
    after = msgspec.structs.replace(before, call_prices={15: 1, 30: 3, 45: 3}, daily_cap=4)
    assert changes(before, after) == [
        (
            "Call prices",
            "15 min: 1 credit, 30 min: 2 credits, 45 min: 3 credits",
            "15 min: 1 credit, 30 min: 3 credits, 45 min: 3 credits",
        ),
        ("Appointments a day at most (0: no cap)", "6", "4"),
    ]
    assert changes(after, after) == []
    saturday = msgspec.structs.replace(
        before, working_hours={**before.working_hours, "sat": [Interval("09:00", "12:00")]}
    )
    assert changes(before, saturday) == [("Working hours — Saturday", "closed", "09:00-12:00")]
    first = changes(None, after)
    assert len(first) == len(Rules.__struct_fields__) - 1 + len(WEEKDAYS)


@settings(max_examples=30)
@given(valid_rules())
def test_every_rule_has_a_label(rules: Rules) -> None:
    i18n.activate("fr")
    rows = changes(None, rules)
    assert all(label and after for label, _, after in rows)
