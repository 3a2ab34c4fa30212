from __future__ import annotations

import pytest

from portal.accounts.passwords import HASHER
from portal.accounts.services import normalize_email
from portal.accounts.throttle import address_of
from portal.web.hosts import _hostname, allowed_hosts
from portal.web.redirects import safe_next


def test_argon2id_parameters_meet_the_minimum() -> None:
    encoded = HASHER.hash("a password")
    assert encoded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("  Alice@Example.COM ", "alice@example.com"),
        ("ＡＬＩＣＥ@example.com", "alice@example.com"),  # full-width letters (NFKC)
    ],
)
def test_emails_have_one_spelling(raw: str, normalised: str) -> None:
    assert normalize_email(raw) == normalised


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/me", "/me"),
        ("/account?tab=1", "/account?tab=1"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_redirects_stay_on_site(target: str | None, expected: str) -> None:
    assert safe_next(target, "/") == expected


def test_host_names_ignore_the_port() -> None:
    assert _hostname("127.0.0.1:8123") == "127.0.0.1"
    assert _hostname("Portal.Example.fr") == "portal.example.fr"
    assert _hostname("[::1]:8000") == "[::1]"
    assert "localhost" in allowed_hosts("127.0.0.1")
    assert allowed_hosts("portal.example.fr") == frozenset({"portal.example.fr"})


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        ("2026-01-31", 1, "2026-02-28"),
        ("2026-11-24", 12, "2027-11-24"),
        ("2028-02-29", 12, "2029-02-28"),
        ("2026-12-15", 1, "2027-01-15"),
    ],
)
def test_credit_validity_counts_calendar_months(start: str, months: int, end: str) -> None:
    from datetime import UTC, datetime

    from portal.credits.services import add_months

    moment = datetime.fromisoformat(start).replace(tzinfo=UTC)
    assert add_months(moment, months).date().isoformat() == end


def test_throttling_counts_an_ipv6_subscriber_as_one_address() -> None:
    assert (
        address_of("2001:db8:1:2::1") == address_of("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    )
    assert address_of("2001:db8:1:3::1") != address_of("2001:db8:1:2::1")
    assert address_of("::ffff:192.0.2.7") == address_of("192.0.2.7") == "192.0.2.7"
    assert address_of("testclient") == "testclient"  # not an address: counted as it is
