"""The cancellation policy: free before the deadline, the charter's share after it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from portal.booking.policy import Terms, cancellation_cost, late_cancellation_cost

START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


@given(
    credits=st.integers(0, 1000),
    hours=st.integers(0, 168),
    percent=st.integers(0, 100),
    before=st.integers(-10_000, 10_000),
)
def test_the_late_cost_is_what_a_late_cancellation_costs(
    credits: int, hours: int, percent: int, before: int
) -> None:
    terms = Terms(
        credits=credits,
        starts_at=START,
        cancel_free_hours=hours,
        cancel_late_forfeit_percent=percent,
        no_show_client_percent=100,
    )
    now = terms.free_until + timedelta(minutes=before)
    late = late_cancellation_cost(terms)
    assert 0 <= late <= credits
    assert cancellation_cost(terms, now=now, by_expert=False) == (0 if before < 0 else late)
    assert cancellation_cost(terms, now=now, by_expert=True) == 0


def test_a_share_is_rounded_to_the_nearest_credit_a_half_up_for_every_price_and_percent() -> None:
    """Against exact fractions, over every price a charter may set and every percentage:
    the nearest credit, halves up; never more than the price; nothing only under half."""
    from fractions import Fraction

    from portal.booking.policy import share

    for credits in range(1, 501):
        for percent in range(101):
            exact = Fraction(credits * percent, 100)
            got = share(credits, percent)
            assert got - Fraction(1, 2) <= exact < got + Fraction(1, 2), (credits, percent)
            assert 0 <= got <= credits
            assert (got == 0) == (exact < Fraction(1, 2))


def test_half_a_small_price_is_not_rounded_to_nothing() -> None:
    from portal.booking.policy import share

    assert [share(1, 50), share(3, 50), share(1, 49), share(2, 25), share(5, 10)] == [1, 2, 0, 1, 1]
