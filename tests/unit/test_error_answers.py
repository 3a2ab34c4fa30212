"""One mapping of domain errors to answers: each error's status, extras and headers."""

from __future__ import annotations

import pytest

from portal import i18n
from portal.accounts.login import CodeRequired, LinkInvalid, LoginRefused
from portal.accounts.throttle import Throttled
from portal.booking.services import CostChanged, SlotTaken
from portal.credits.checkout import PaymentsUnavailable
from portal.credits.ledger import InsufficientCredits
from portal.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from portal.web.errors import refusal


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (DomainError("x"), 400),
        (LinkInvalid(), 400),
        (ValidationFailed({"name": "Required."}), 422),
        (NotFound(), 404),
        (Forbidden(), 403),
        (Conflict("x", code="too_late"), 409),
        (SlotTaken(), 409),
        (CostChanged(2), 409),
        (InsufficientCredits(missing=3), 402),
        (Throttled(5), 429),
        (CodeRequired(60), 429),
        (PaymentsUnavailable(), 503),
        (LoginRefused(), 400),
    ],
)
def test_each_error_has_its_status(error: DomainError, status: int) -> None:
    assert refusal(error).status == status


def test_a_wrong_password_is_401_on_the_api_only() -> None:
    assert refusal(LoginRefused(), api=True).status == 401
    assert refusal(Throttled(5), api=True).status == 429


def test_extras_and_headers() -> None:
    i18n.activate("en")
    short = refusal(InsufficientCredits(missing=3))
    assert short.extras == {"missing": 3} and short.headers == {}
    throttled = refusal(Throttled(90))
    assert throttled.headers == {"Retry-After": "90"}
    assert throttled.message == "Too many failed attempts. Try again in 2 minutes."
    code = refusal(CodeRequired(60))
    assert code.headers == {"Retry-After": "60"} and "Try again" not in code.message


def test_fields_say_what_is_wrong_in_a_validation_error() -> None:
    i18n.activate("en")
    invalid = refusal(ValidationFailed({"name": "Required."}))
    assert invalid.errors == {"name": "Required."} and invalid.problem is None
    taken = refusal(SlotTaken())
    assert taken.errors == {} and taken.problem == taken.message
    assert refusal(NotFound()).message == "Not found."  # raised without a sentence
