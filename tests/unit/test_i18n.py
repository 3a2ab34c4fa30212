from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal import i18n


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("en-US,en;q=0.9,fr;q=0.8", "en"),
        ("fr-CA", "fr"),
        ("de-DE,fr;q=0.5,en;q=0.4", "fr"),
        ("de,es", None),
        ("en;q=0.2,fr;q=0.9", "fr"),
        ("", None),
        (None, None),
        ("en;q=bogus,fr", "fr"),
    ],
)
def test_negotiate(header: str | None, expected: str | None) -> None:
    assert i18n.negotiate(header) == expected


def test_french_catalog_translates_and_english_falls_back_to_the_id() -> None:
    i18n.activate("fr")
    assert i18n.gettext("Log in") == "Se connecter"
    i18n.activate("en")
    assert i18n.gettext("Log in") == "Log in"
    i18n.activate("xx")
    assert i18n.current_locale() == "fr"


def test_every_french_message_is_translated() -> None:
    from babel.messages.pofile import read_po

    with (i18n.LOCALE_DIR / "fr" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f)
    untranslated = [m.id for m in catalog if m.id and not m.string]
    assert untranslated == []


def test_dates_in_the_viewers_zone_and_language() -> None:
    moment = datetime(
        2026, 3, 29, 0, 30, tzinfo=UTC
    )  # 01:30 in Paris, 20:30 the day before in New York
    i18n.activate("fr", "Europe/Paris")
    assert i18n.format_datetime(moment, "short") == "29/03/2026 01:30"
    i18n.activate("en", "America/New_York")
    assert i18n.format_datetime(moment, "short").startswith("3/28/26")
    assert i18n.format_date(moment) == "March 28, 2026"


def test_money_is_exact_and_localised() -> None:
    i18n.activate("fr")
    assert i18n.format_money(12_50, "EUR") == "12,50\u00a0€"
    assert i18n.format_money(1_234_567_89, "EUR") == "1\u202f234\u202f567,89\u00a0€"
    i18n.activate("en")
    assert i18n.format_money(12_50, "EUR") == "€12.50"
    assert i18n.format_money(500, "JPY") == "¥500"


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_money_never_loses_a_cent(cents: int) -> None:
    i18n.activate("en")
    text = i18n.format_money(cents, "EUR").replace("€", "").replace(",", "")
    assert Decimal(text) * 100 == cents


def test_a_browsers_alias_is_the_offered_zone_of_the_same_clock() -> None:
    from portal.i18n import canonical_zone, timezones

    assert canonical_zone("Asia/Calcutta") == "Asia/Kolkata"
    assert canonical_zone("Europe/Paris") == "Europe/Paris"
    assert {"Indian/Reunion", "America/Guadeloupe", "Europe/Luxembourg"} <= timezones()
    assert "US/Eastern" not in timezones()  # aliases are not offered, only understood
    for hostile in ("../../etc/passwd", "/etc/passwd", "", "Nowhere/Atlantis"):
        assert canonical_zone(hostile) is None


def test_zones_are_found_by_their_city_and_country_in_the_readers_language() -> None:
    with i18n.speaking("fr", "Europe/Paris"):
        assert i18n.zone_names("Europe/London").startswith("Londres Royaume-Uni")
        assert i18n.zone_names("Africa/Cairo") == "Le Caire Égypte"
        assert "Islande" in i18n.zone_names("Atlantic/Reykjavik")
        assert "Islande" not in i18n.zone_names("Africa/Abidjan")  # one zone, one country
    with i18n.speaking("en", "Europe/Paris"):
        assert i18n.zone_names("Africa/Cairo") == "Cairo Egypt"
    assert i18n.zone_names("Mars/Olympus") == ""
