"""Emailed links that work once (a password reset, a new address to confirm).

A link is `<row id>.<secret>`; the secret is HMAC(SECRET_KEY, purpose:seed). The event log
keeps the seed (so the worker can write the email), the table only a SHA-256 of the
secret: neither lets anyone in without the key."""

from __future__ import annotations

import hashlib
import hmac

from portal.settings import get_settings
from portal.validation import whole_number


def link_secret(purpose: str, seed: str) -> str:
    key = get_settings().secret_key.encode()
    return hmac.new(key, f"{purpose}:{seed}".encode(), hashlib.sha256).hexdigest()


def secret_hash(secret: str) -> str:
    """What the table keeps of a link's secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def link_parts(token: str) -> tuple[int, str] | None:
    """(row id, secret) of a link's token, or None when it is not one."""
    row_id, _, secret = token.partition(".")
    number = whole_number(row_id)
    return (number, secret) if number is not None and secret else None


def secret_matches(stored_hash: str, secret: str) -> bool:
    return hmac.compare_digest(stored_hash, secret_hash(secret))
