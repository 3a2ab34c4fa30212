"""Bookings in plain words."""

from portal.errors import N_

BOOKING_STATUS = {
    "booked": N_("Booked: the credits are held"),
    "completed": N_("Took place: the credits were debited"),
    "cancelled": N_("Cancelled"),
    "no_show_client": N_("Missed by the client"),
    "no_show_expert": N_("Missed by the expert: the credits were released"),
}
