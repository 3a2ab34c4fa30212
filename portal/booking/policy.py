"""What a cancellation or a no-show costs, under the terms a booking froze. Pure.

- The client cancels before the free-cancellation deadline (start minus the charter's
  hours): free, the hold is released. Later: the charter's share of the credits is
  captured, the rest released.
- The expert cancels: always free for the client.
- The client does not come: the charter's no-show share is captured. The expert does not
  come: free for the client.

A share is rounded to the nearest credit, a half up (50 % of 1 credit keeps 1, 50 % of 3
keeps 2): a small price's share never rounds to nothing unless it is under half a credit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Terms:
    credits: int
    starts_at: datetime
    cancel_free_hours: int
    cancel_late_forfeit_percent: int
    no_show_client_percent: int

    @property
    def free_until(self) -> datetime:
        """The last moment a client may cancel (or move the booking) for free."""
        return self.starts_at - timedelta(hours=self.cancel_free_hours)


NO_SHOW_GRACE = timedelta(minutes=10)  # a no-show is told only this long after the start
CONTEST_WITHIN = timedelta(hours=48)  # a client told of a no-show may contest it for this long


def share(credits: int, percent: int) -> int:
    """`percent` % of `credits`, rounded to the nearest credit, a half up."""
    return (credits * percent + 50) // 100


def late_cancellation_cost(terms: Terms) -> int:
    """Credits the client pays for cancelling after the free-cancellation deadline."""
    return share(terms.credits, terms.cancel_late_forfeit_percent)


def cancellation_cost(terms: Terms, *, now: datetime, by_expert: bool) -> int:
    """Credits the client pays when the booking is cancelled at `now`."""
    if by_expert or now < terms.free_until:
        return 0
    return late_cancellation_cost(terms)


def no_show_cost(terms: Terms, *, client_absent: bool) -> int:
    """Credits the client pays when one side did not come."""
    return share(terms.credits, terms.no_show_client_percent) if client_absent else 0
