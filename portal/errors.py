"""Domain errors. Each carries a stable code that routes map to a status and tests assert on.

Messages are English message ids marked with `N_`; the web layer translates them into the
viewer's language, so domain code never needs to know who is looking.
"""

from __future__ import annotations


def N_(message: str) -> str:
    """Mark a message id for extraction without translating it here."""
    return message


class DomainError(Exception):
    code = "error"

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        self.code = code or self.code
        self.message = message or self.code
        super().__init__(self.message)


class NotFound(DomainError):
    code = "not_found"


class Forbidden(DomainError):
    code = "forbidden"


class Conflict(DomainError):
    code = "conflict"


class ValidationFailed(DomainError):
    """Bad input, with one message id per field."""

    code = "validation_failed"

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__(N_("Some fields are not valid."))
