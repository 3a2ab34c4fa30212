from enum import StrEnum

from piccolo.columns import Boolean, ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Role(StrEnum):
    client = "client"
    expert = "expert"


class User(Table, tablename="accounts_user"):
    id: Serial  # the primary key Piccolo adds, declared for type checkers
    email = Varchar(length=254, unique=True, null=False)  # normalised: see services.normalize_email
    password_hash = Varchar(length=255, null=False)
    role = Varchar(length=16, choices=Role, default=Role.client.value, null=False)
    name = Varchar(length=120, default="", null=False)
    locale = Varchar(length=8, default="fr", null=False)
    timezone = Varchar(length=64, default="Europe/Paris", null=False)
    is_active = Boolean(default=True, null=False)
    # False while the address is only held by sign-ups (see Signup): such a row has no
    # password and opens nothing. Accounts made otherwise: True.
    email_confirmed = Boolean(default=True, null=False)
    created_at = Timestamptz(default=TimestamptzNow(), null=False)
    # Not confirmed yet: when the last sign-up for the address came (see signups_purge).
    password_changed_at = Timestamptz(default=TimestamptzNow(), null=False)
    # Emails one may turn off (what happens to a booking or a question is always told).
    remind_bookings = Boolean(default=True, null=False)  # 24 h and 1 h before
    remind_deadlines = Boolean(default=True, null=False)  # an expert's reply deadline near
    notify_credits = Boolean(default=True, null=False)  # credits expiring, balance low


class Expert(Table, tablename="accounts_expert"):
    id: Serial
    user = ForeignKey(User, null=False, unique=True, on_delete=OnDelete.cascade)
    slug = Varchar(length=64, unique=True, null=False)
    display_name = Varchar(length=120, null=False)
    headline = Varchar(length=200, default="", null=False)
    bio = Text(default="", null=False)
    created_at = Timestamptz(default=TimestamptzNow(), null=False)
    # Kept by the charter services, in the transaction of each change: the number of the
    # published charter version (0: none yet) and a counter bumped when packs change.
    # Together they name the public page's content, so it can be cached without going stale.
    charter_version = Integer(default=0, null=False)
    packs_rev = Integer(default=0, null=False)


class ApiToken(Table, tablename="accounts_api_token"):
    """A bearer token for the JSON API. Only its SHA-256 is stored."""

    id: Serial
    user = ForeignKey(User, null=False, on_delete=OnDelete.cascade, index=True)
    token_hash = Varchar(length=64, unique=True, null=False)
    prefix = Varchar(length=12, null=False)
    name = Varchar(length=80, default="", null=False)
    created_at = Timestamptz(default=TimestamptzNow(), null=False)
    last_used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class Signup(Table, tablename="accounts_signup"):
    """One sign-up waiting for its address to be proven, kept apart from the others for the
    same address: none replaces another. `user` is the address (a User not confirmed yet);
    the first sign-up whose password is given with an emailed link becomes the account,
    and the others end with it."""

    id: Serial
    user = ForeignKey(User, null=False, on_delete=OnDelete.cascade, index=True)
    password_hash = Varchar(length=255, null=False)
    name = Varchar(length=120, default="", null=False)
    locale = Varchar(length=8, default="fr", null=False)
    timezone = Varchar(length=64, default="Europe/Paris", null=False)
    next_path = Varchar(length=2000, default="", null=False)  # where to go once in
    created_at = Timestamptz(default=TimestamptzNow(), null=False)
    expires_at = Timestamptz(null=False)
    link_sent = Boolean(default=False, null=False)  # a link was emailed for it


class PasswordReset(Table, tablename="accounts_password_reset"):
    """The one reset link an account may have: a newer request replaces it, a login or its
    use ends it. Only a hash of its secret is kept (the secret is HMAC(SECRET_KEY, seed))."""

    id: Serial

    user = ForeignKey(User, null=False, unique=True, on_delete=OnDelete.cascade)
    token_hash = Varchar(length=64, unique=True, null=False)
    created_at = Timestamptz(default=TimestamptzNow(), null=False)
    expires_at = Timestamptz(null=False)


class EmailChange(Table, tablename="accounts_email_change"):
    """An address an account asked to move to, until its owner opens the link sent there
    (one per account: a newer request replaces it). Only a hash of the link's secret."""

    id: Serial

    user = ForeignKey(User, null=False, unique=True, on_delete=OnDelete.cascade)
    new_email = Varchar(length=254, null=False)
    token_hash = Varchar(length=64, unique=True, null=False)
    created_at = Timestamptz(default=TimestamptzNow(), null=False)
    expires_at = Timestamptz(null=False)
