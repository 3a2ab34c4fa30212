"""Notifications: emails people get about what happens, sent once and retried."""
