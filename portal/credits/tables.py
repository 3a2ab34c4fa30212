from enum import StrEnum

from piccolo.columns import ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from portal.accounts.tables import Expert, User
from portal.charter.tables import CreditPack


class EntryKind(StrEnum):
    grant = "grant"
    hold = "hold"
    capture = "capture"
    release = "release"
    expire = "expire"
    refund = "refund"
    adjust = "adjust"


class HoldStatus(StrEnum):
    active = "active"
    captured = "captured"
    released = "released"
    expired = "expired"


class Wallet(Table, tablename="credits_wallet"):
    """A client's credits with one expert. `available` and `held` are caches of the ledger,
    changed only in the transaction that writes the entries they sum."""

    id: Serial  # the primary key Piccolo adds, declared for type checkers
    client = ForeignKey(User, null=False, on_delete=OnDelete.restrict, index=True)
    expert = ForeignKey(Expert, null=False, on_delete=OnDelete.restrict, index=True)
    available = Integer(default=0, null=False)
    held = Integer(default=0, null=False)
    created_at = Timestamptz(default=TimestamptzNow(), null=False)


class Lot(Table, tablename="credits_lot"):
    """Credits that arrived together (a purchase, a grant) and expire together."""

    id: Serial
    wallet = ForeignKey(Wallet, null=False, on_delete=OnDelete.restrict, index=True)
    reference = Varchar(length=80, null=False)  # "purchase:12", "adjust:<key>"
    credits = Integer(null=False)  # as granted
    remaining = Integer(null=False)  # neither held, captured, expired nor refunded
    expires_at = Timestamptz(null=False)
    created_at = Timestamptz(default=TimestamptzNow(), null=False)


class Hold(Table, tablename="credits_hold"):
    """Credits reserved for an exchange; ends once: captured, released or expired."""

    id: Serial
    wallet = ForeignKey(Wallet, null=False, on_delete=OnDelete.restrict, index=True)
    reference = Varchar(length=80, null=False, unique=True)  # "booking:7", "question:3"
    amount = Integer(null=False)
    captured = Integer(default=0, null=False)
    status = Varchar(length=16, choices=HoldStatus, default=HoldStatus.active.value, null=False)
    created_at = Timestamptz(default=TimestamptzNow(), null=False)
    ended_at = Timestamptz(null=True, default=None)


class HoldPart(Table, tablename="credits_hold_part"):
    """Which lots a hold took its credits from (oldest expiry first), to give them back."""

    id: Serial
    hold = ForeignKey(Hold, null=False, on_delete=OnDelete.restrict, index=True)
    lot = ForeignKey(Lot, null=False, on_delete=OnDelete.restrict)
    amount = Integer(null=False)


class Entry(Table, tablename="credits_entry"):
    """The append-only ledger. `amount` is the change of the available balance, except for
    `capture`, which spends held credits (0 change of available, `held_change` < 0)."""

    id: Serial
    wallet = ForeignKey(Wallet, null=False, on_delete=OnDelete.restrict, index=True)
    kind = Varchar(length=16, choices=EntryKind, null=False)
    amount = Integer(null=False)  # change of `available`
    held_change = Integer(default=0, null=False)  # change of `held`
    idempotency_key = Varchar(length=120, null=False, unique=True)
    reference = Varchar(length=80, null=False)  # what caused it
    lot = ForeignKey(Lot, null=True, default=None, on_delete=OnDelete.restrict)
    hold = ForeignKey(Hold, null=True, default=None, on_delete=OnDelete.restrict)
    memo = Varchar(length=300, default="", null=False)
    created_at = Timestamptz(default=TimestamptzNow(), null=False)


class PurchaseStatus(StrEnum):
    pending = "pending"  # created; the client is at (or on the way to) the checkout
    processing = "processing"  # paid by a delayed method (SEPA): waiting for the money
    paid = "paid"  # credits granted
    failed = "failed"
    expired = "expired"  # checkout abandoned


class Purchase(Table, tablename="credits_purchase"):
    """A credit pack bought (or being bought): what was sold, at what price, under which
    charter version. Its id is the Checkout idempotency key and client_reference_id."""

    id: Serial
    client = ForeignKey(User, null=False, on_delete=OnDelete.restrict, index=True)
    expert = ForeignKey(Expert, null=False, on_delete=OnDelete.restrict, index=True)
    pack = ForeignKey(CreditPack, null=True, default=None, on_delete=OnDelete.set_null)
    pack_name = Varchar(length=80, null=False)
    credits = Integer(null=False)
    price_minor = Integer(null=False)
    currency = Varchar(length=3, null=False)
    charter_version = Integer(null=False)
    validity_months = Integer(null=False)
    status = Varchar(
        length=16, choices=PurchaseStatus, default=PurchaseStatus.pending.value, null=False
    )
    checkout_session = Varchar(length=255, null=True, default=None, unique=True)
    next_path = Varchar(length=2000, default="", null=False)  # where the buyer came from
    payment_intent = Varchar(length=255, null=True, default=None, index=True)
    charge = Varchar(length=255, null=True, default=None, index=True)  # learnt from charge.*
    lot = ForeignKey(Lot, null=True, default=None, on_delete=OnDelete.restrict)
    # Refunds as the charge reports them: cumulative, in the charge's currency (with Adaptive
    # Pricing, the customer's), beside the amount the charge took in that currency.
    refunded_minor = Integer(default=0, null=False)
    refund_currency = Varchar(length=3, null=True, default=None)  # None: the purchase's
    charged_minor = Integer(default=0, null=False)  # 0: the purchase's price
    # Credits a refund asks back (the refunded share of the price, rounded down), and what
    # of it could not be taken because it was already used, held or expired.
    refund_credits = Integer(default=0, null=False)
    refund_shortfall = Integer(default=0, null=False)
    disputed_credits = Integer(default=0, null=False)  # taken back by an open dispute
    # Why the last payment naming this purchase did not match it (another session, another
    # amount or currency): it granted nothing; shown to the expert.
    mismatch = Text(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow(), null=False)
    paid_at = Timestamptz(null=True, default=None)


class StripeEvent(Table, tablename="credits_stripe_event"):
    """Every verified webhook event, stored once before it is acted on."""

    id: Serial
    event_id = Varchar(length=255, null=False, unique=True)
    type = Varchar(length=80, null=False)
    payload = Text(null=False)
    # The charge and PaymentIntent its object names, to match events that arrive in any order.
    charge = Varchar(length=255, null=True, default=None, index=True)
    payment_intent = Varchar(length=255, null=True, default=None, index=True)
    received_at = Timestamptz(default=TimestamptzNow(), null=False)
    processed_at = Timestamptz(null=True, default=None)


class Dispute(Table, tablename="credits_dispute"):
    """A dispute (or inquiry) on a purchase's charge, as Stripe last told it. Only a
    charge's first dispute moves credits, keyed on its id: `taken` while it is open, given
    back if it closes in the client's favour, kept if lost."""

    id: Serial
    dispute_id = Varchar(length=255, null=False, unique=True)
    purchase = ForeignKey(Purchase, null=False, on_delete=OnDelete.restrict, index=True)
    status = Varchar(length=32, null=False)
    taken = Integer(default=0, null=False)
    created_at = Timestamptz(default=TimestamptzNow(), null=False)
    closed_at = Timestamptz(null=True, default=None)
