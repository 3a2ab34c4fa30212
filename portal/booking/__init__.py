"""Booking: availability, slots, bookings and calendars."""
