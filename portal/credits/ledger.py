"""The credits ledger: one wallet per (client, expert), an append-only list of entries.

Rules, checked by `wallet_check()` after every test scenario:
- Credits are integers. Every change writes entries, each with a unique, non-null
  idempotency key: the same operation asked twice applies once (the second call returns
  what the first did).
- `Wallet.available` = sum of entry amounts = sum of lots' `remaining` >= 0;
  `Wallet.held` = sum of entries' `held_change` = sum of active holds >= 0.
- Credits arrive in lots that expire; holds and debits take from the lots that expire first.
- A hold ends exactly once: captured (partially or wholly; the rest is released), released,
  or expired. A capture never exceeds its hold.
- All changes to one wallet are serialized: a row lock on PostgreSQL, BEGIN IMMEDIATE on
  SQLite (see portal.db.write_transaction). Locks come in one order: a hold's row (when
  ending it), then its wallet's, then lots'.

The ledger knows nothing of bookings, questions or purchases: callers pass references
("booking:12") and keys ("capture:booking:12").
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from portal.credits.tables import Entry, EntryKind, Hold, HoldPart, HoldStatus, Lot, Wallet
from portal.db import in_writer_thread, is_postgres, is_unique_violation, qmarks, write_transaction
from portal.errors import N_, Conflict, DomainError, NotFound, ValidationFailed
from portal.events.log import record_many


class InsufficientCredits(DomainError):
    code = "insufficient_credits"

    def __init__(self, missing: int) -> None:
        self.missing = missing
        super().__init__(N_("Not enough credits."))


@dataclass(frozen=True, slots=True)
class Balance:
    available: int
    held: int


def _now() -> datetime:
    return datetime.now(UTC)


async def wallet_for(*, client_id: int, expert_id: int) -> Wallet:
    """The client's wallet with this expert, created empty the first time."""
    query = Wallet.objects().where((Wallet.client == client_id) & (Wallet.expert == expert_id))
    wallet = await query.first()
    if wallet is not None:
        return wallet
    try:
        async with write_transaction():
            wallet = await query.first()
            if wallet is None:
                wallet = Wallet(client=client_id, expert=expert_id)
                await wallet.save()
    except Exception as exc:  # PostgreSQL: a racing first use created it
        if not is_unique_violation(exc):
            raise
        wallet = await query.first()
    assert wallet is not None
    return wallet


@asynccontextmanager
async def _locked(wallet_id: int) -> AsyncIterator[Wallet]:
    """A write transaction holding the wallet: other changes to it wait their turn."""
    async with write_transaction():
        query = Wallet.objects().where(Wallet.id == wallet_id)
        if is_postgres():
            query = query.lock_rows()
        wallet = await query.first()
        if wallet is None:
            raise NotFound(N_("This wallet does not exist."))
        yield wallet


async def _done(key: str) -> Entry | None:
    return await Entry.objects().where(Entry.idempotency_key == key).first()


async def _hold(hold_id: int | None) -> Hold:
    """A hold read again: after a change, or for an operation asked twice (its entry's)."""
    held = await Hold.objects().get(Hold.id == hold_id)
    if held is None:
        raise NotFound(N_("This hold does not exist."))
    return held


async def _write(
    wallet: Wallet,
    *,
    kind: EntryKind,
    amount: int,
    key: str,
    reference: str,
    held_change: int = 0,
    lot: int | None = None,
    hold: int | None = None,
    memo: str = "",
) -> Entry:
    """Append an entry and move the wallet's caches by the same amounts."""
    entry = Entry(
        wallet=wallet.id,
        kind=kind.value,
        amount=amount,
        held_change=held_change,
        idempotency_key=key,
        reference=reference,
        lot=lot,
        hold=hold,
        memo=memo[:300],
    )
    await entry.save()
    wallet.available += amount
    wallet.held += held_change
    await Wallet.update(
        {Wallet.available: Wallet.available + amount, Wallet.held: Wallet.held + held_change}
    ).where(Wallet.id == wallet.id)
    return entry


async def _usable_lots(wallet: Wallet, now: datetime) -> list[Lot]:
    return (
        await Lot.objects()
        .where((Lot.wallet == wallet.id) & (Lot.remaining > 0) & (Lot.expires_at > now))
        .order_by(Lot.expires_at)
        .order_by(Lot.id)
    )


async def _take(wallet: Wallet, amount: int, now: datetime) -> list[tuple[Lot, int]]:
    """Take `amount` credits from the lots expiring first; raise when there are not enough."""
    lots = await _usable_lots(wallet, now)
    usable = sum(lot.remaining for lot in lots)
    if usable < amount:
        raise InsufficientCredits(missing=amount - usable)
    taken: list[tuple[Lot, int]] = []
    left = amount
    for lot in lots:
        if left == 0:
            break
        part = min(left, lot.remaining)
        await Lot.update({Lot.remaining: Lot.remaining - part}).where(Lot.id == lot.id)
        taken.append((lot, part))
        left -= part
    return taken


def _positive(amount: int, field: str = "amount") -> None:
    if amount <= 0:
        raise ValidationFailed({field: N_("A number of credits greater than zero.")})


async def grant(
    *,
    wallet_id: int,
    credits: int,
    expires_at: datetime,
    reference: str,
    key: str,
    kind: EntryKind = EntryKind.grant,
    memo: str = "",
) -> Entry:
    """New credits in a lot of their own (a purchase, a gift, a positive adjustment)."""
    _positive(credits, "credits")
    async with _locked(wallet_id) as wallet:
        if (done := await _done(key)) is not None:
            return done
        lot = Lot(
            wallet=wallet.id,
            reference=reference,
            credits=credits,
            remaining=credits,
            expires_at=expires_at,
        )
        await lot.save()
        return await _write(
            wallet, kind=kind, amount=credits, key=key, reference=reference, lot=lot.id, memo=memo
        )


# Statements written once for both ways of running them: Piccolo's raw() ({} placeholders)
# and, on SQLite inside a batch, sqlite3 (qmarks()).
_LOTS_AND_DONE = (
    "SELECT e.id AS done, e.hold AS done_hold, l.id, l.remaining "
    "FROM (SELECT 1 AS one) AS one "
    "LEFT JOIN credits_entry AS e ON e.idempotency_key = {} "
    "LEFT JOIN credits_lot AS l ON l.wallet = {} AND l.remaining > 0 AND l.expires_at > {} "
    "ORDER BY l.expires_at, l.id"
)
_MOVE = (
    "UPDATE credits_wallet SET available = available + {}, held = held + {} "
    "WHERE id = {} AND available + {} >= 0 AND held + {} >= 0 RETURNING id"
)
_HOLD_ENTRY_COLUMNS = (
    "wallet, kind, amount, held_change, idempotency_key, reference, hold, memo, created_at"
)


def _lots_read(rows: list[dict[str, Any]]) -> tuple[bool, int | None, list[tuple[int, int]]]:
    lots = [(row["id"], row["remaining"]) for row in rows if row["id"] is not None]
    return rows[0]["done"] is not None, rows[0]["done_hold"], lots


async def _lots_and_done(
    wallet_id: int, key: str, now: datetime
) -> tuple[bool, int | None, list[tuple[int, int]]]:
    """In one statement: whether an entry was already written under `key` (and its hold),
    and the wallet's usable lots (id, remaining), the ones expiring first first."""
    return _lots_read(await Lot.raw(_LOTS_AND_DONE, key, wallet_id, now))


def _move_args(wallet_id: int, available: int, held: int) -> tuple[int, ...]:
    return (available, held, wallet_id, available, held)


async def _move(wallet_id: int, *, available: int = 0, held: int = 0) -> bool:
    """Move the wallet's caches (on PostgreSQL this takes its row lock); False, with nothing
    changed, when the wallet does not exist or a balance would go below zero."""
    return bool(await Wallet.raw(_MOVE, *_move_args(wallet_id, available, held)))


async def _moved(wallet_id: int, *, available: int = 0, held: int = 0) -> None:
    """Move the wallet's caches, which the entries written say can be moved."""
    if not await _move(wallet_id, available=available, held=held):
        raise RuntimeError(f"wallet {wallet_id}: its balances would go below zero")


async def _lots_add(changes: list[tuple[int, int]]) -> None:
    """Add each (lot id, credits) to the lot's `remaining`, in one statement."""
    if not changes:
        return
    if len(changes) == 1:
        [(lot_id, credits)] = changes
        await Lot.raw(
            "UPDATE credits_lot SET remaining = remaining + {} WHERE id = {}", credits, lot_id
        )
        return
    cases = " ".join("WHEN {} THEN CAST({} AS INTEGER)" for _ in changes)
    ids = ", ".join("{}" for _ in changes)
    args = [value for change in changes for value in change]
    await Lot.raw(
        f"UPDATE credits_lot SET remaining = remaining + CASE id {cases} END "  # noqa: S608
        f"WHERE id IN ({ids})",
        *args,
        *(lot_id for lot_id, _ in changes),
    )


@dataclass(frozen=True, slots=True)
class _Holding:
    """How a hold went: the hold made (its id), or the key's earlier hold, or not enough."""

    made: int | None
    done: bool = False
    done_hold: int | None = None
    usable: int = 0
    wallet_found: bool = True


async def hold(*, wallet_id: int, amount: int, reference: str, key: str | None = None) -> Hold:
    """Reserve credits for an exchange; raises InsufficientCredits (with what is missing)."""
    _positive(amount)
    key = key or f"hold:{reference}"
    held = Hold(wallet=wallet_id, reference=reference, amount=amount, created_at=_now())
    async with write_transaction():
        if is_postgres():
            outcome = await _hold_postgres(held, key)
        else:
            outcome = await in_writer_thread(
                _hold_sqlite, wallet_id, amount, reference, held.status, held.created_at, key
            )
        if outcome.made is not None:
            held.id = outcome.made
            held._exists_in_db = True
            return held
        if outcome.done:
            return await _hold(outcome.done_hold)
        if not outcome.wallet_found:
            raise NotFound(N_("This wallet does not exist."))
        # Less available than asked, and the lots hold no more than that.
        raise InsufficientCredits(missing=max(amount - outcome.usable, 1))


async def _hold_postgres(held: Hold, key: str) -> _Holding:
    """The caches move first, which takes the wallet's lock, so what follows reads the
    wallet as it is once locked; undone if the hold is not made."""
    moved = await _move(held.wallet, available=-held.amount, held=held.amount)
    if moved:
        made, done, done_hold, usable = await _hold_made(held, key)
        if made:
            return _Holding(made=held.id)
        await _moved(held.wallet, available=held.amount, held=-held.amount)
        return _Holding(made=None, done=done, done_hold=done_hold, usable=usable)
    await _locked_row(held.wallet)  # no such wallet, not enough credits, or asked again
    done, done_hold, lots = await _lots_and_done(held.wallet, key, held.created_at)
    return _Holding(made=None, done=done, done_hold=done_hold, usable=sum(r for _, r in lots))


def _hold_sqlite(
    db: sqlite3.Connection,
    wallet_id: int,
    amount: int,
    reference: str,
    status: str,
    now: datetime,
    key: str,
) -> _Holding:
    """SQLite, in one batch in the connection's thread (the transaction holds the database
    already): the caches moved, the key and the usable lots read, and when the key is new
    and the lots suffice, the credits taken from the lots expiring first and the hold
    written with its parts and its entry; otherwise the caches moved back."""
    moved = bool(db.execute(qmarks(_MOVE), _move_args(wallet_id, -amount, amount)).fetchall())
    done, done_hold, lots = _lots_read(
        db.execute(qmarks(_LOTS_AND_DONE), (key, wallet_id, now)).fetchall()
    )
    usable = sum(remaining for _, remaining in lots)
    if not moved or done or usable < amount:
        if moved:
            db.execute(qmarks(_MOVE), _move_args(wallet_id, amount, -amount))
        found = moved or bool(
            db.execute("SELECT 1 FROM credits_wallet WHERE id = ?", (wallet_id,)).fetchall()
        )
        return _Holding(
            made=None, done=done, done_hold=done_hold, usable=usable, wallet_found=found
        )
    taken = _first_expiring(lots, amount)
    db.executemany(
        "UPDATE credits_lot SET remaining = remaining - ? WHERE id = ?",
        [(part, lot_id) for lot_id, part in taken],
    )
    [row] = db.execute(
        "INSERT INTO credits_hold (wallet, reference, amount, captured, status, created_at) "
        "VALUES (?, ?, ?, 0, ?, ?) RETURNING id",
        (wallet_id, reference, amount, status, now),
    ).fetchall()
    db.executemany(
        "INSERT INTO credits_hold_part (hold, lot, amount) VALUES (?, ?, ?)",
        [(row["id"], lot_id, part) for lot_id, part in taken],
    )
    db.execute(
        f"INSERT INTO credits_entry ({_HOLD_ENTRY_COLUMNS}) "  # noqa: S608
        "VALUES (?, ?, ?, ?, ?, ?, ?, '', ?)",
        (wallet_id, EntryKind.hold.value, -amount, amount, key, reference, row["id"], now),
    )
    return _Holding(made=row["id"], usable=usable)


def _first_expiring(lots: list[tuple[int, int]], amount: int) -> list[tuple[int, int]]:
    """(lot id, credits) taken from the usable `lots`, in their order, to make `amount`."""
    taken: list[tuple[int, int]] = []
    left = amount
    for lot_id, remaining in lots:
        if left == 0:
            break
        part = min(left, remaining)
        taken.append((lot_id, part))
        left -= part
    return taken


async def _hold_made(held: Hold, key: str) -> tuple[bool, bool, int | None, int]:
    """PostgreSQL, the wallet locked: in one statement, the key checked, the usable lots
    read, and when they are enough and the key is new, the credits taken from the lots
    expiring first, the hold written with its parts and its entry (`held` gets its id).
    Returns whether it was made, whether the key was used already (and that entry's hold),
    and the credits usable."""
    [row] = await Hold.raw(
        "WITH done AS (SELECT hold FROM credits_entry WHERE idempotency_key = {}), "  # noqa: S608
        "usable AS (SELECT id, remaining, "
        "SUM(remaining) OVER (ORDER BY expires_at, id) AS upto FROM credits_lot "
        "WHERE wallet = {} AND remaining > 0 AND expires_at > {}), "
        "go AS (SELECT 1 FROM (SELECT COALESCE(SUM(remaining), 0) AS total FROM usable) AS u "
        "WHERE u.total >= {} AND NOT EXISTS (SELECT 1 FROM done)), "
        "taken AS (SELECT id, LEAST(remaining, {} - (upto - remaining)) AS part FROM usable "
        "WHERE upto - remaining < {} AND EXISTS (SELECT 1 FROM go)), "
        "h AS (INSERT INTO credits_hold (wallet, reference, amount, captured, status, "
        "created_at) SELECT {}, {}, {}, 0, {}, {} FROM go RETURNING id), "
        "l AS (UPDATE credits_lot SET remaining = credits_lot.remaining - taken.part "
        "FROM taken WHERE credits_lot.id = taken.id), "
        "p AS (INSERT INTO credits_hold_part (hold, lot, amount) "
        "SELECT h.id, taken.id, taken.part FROM h, taken), "
        f"e AS (INSERT INTO credits_entry ({_HOLD_ENTRY_COLUMNS}) "
        "SELECT {}, {}, {}, {}, {}, {}, h.id, '', {} FROM h) "
        "SELECT (SELECT id FROM h) AS made, EXISTS (SELECT 1 FROM done) AS done, "
        "(SELECT hold FROM done) AS done_hold, "
        "(SELECT COALESCE(SUM(remaining), 0) FROM usable) AS usable",
        key,
        held.wallet,
        held.created_at,
        held.amount,
        held.amount,
        held.amount,
        held.wallet,
        held.reference,
        held.amount,
        held.status,
        held.created_at,
        held.wallet,
        EntryKind.hold.value,
        -held.amount,
        held.amount,
        key,
        held.reference,
        held.created_at,
    )
    if row["made"] is not None:
        held.id = row["made"]
        held._exists_in_db = True
    return row["made"] is not None, row["done"], row["done_hold"], int(row["usable"])


async def _locked_row(wallet_id: int) -> None:
    """The wallet's lock taken the plain way (PostgreSQL; SQLite's transaction holds the
    database already); NotFound when there is no such wallet."""
    query = Wallet.select(Wallet.id).where(Wallet.id == wallet_id)
    if await (query.lock_rows() if is_postgres() else query).first() is None:
        raise NotFound(N_("This wallet does not exist."))


def _entry(
    wallet_id: int,
    *,
    kind: EntryKind,
    amount: int,
    key: str,
    reference: str,
    held_change: int = 0,
    hold: int | None = None,
) -> Entry:
    return Entry(
        wallet=wallet_id,
        kind=kind.value,
        amount=amount,
        held_change=held_change,
        idempotency_key=key,
        reference=reference,
        hold=hold,
    )


async def _active_hold(wallet: Wallet, hold_id: int) -> Hold:
    held = await Hold.objects().where((Hold.id == hold_id) & (Hold.wallet == wallet.id)).first()
    if held is None:
        raise NotFound(N_("This hold does not exist."))
    if held.status != HoldStatus.active.value:
        raise Conflict(N_("This hold has already ended."), code="hold_ended")
    return held


async def _give_back(
    held: Hold, amount: int, key: str, now: datetime
) -> tuple[int, list[tuple[int, int]], list[Entry]]:
    """Return `amount` of a hold's credits to its lots (the latest-expiring first); what
    lands in a lot that has expired meanwhile expires at once. The wallet's caches are the
    caller's to move (its lock comes before the lots'): returns how much of `amount`
    expired, what goes back to which lot, and the entries to write."""
    parts = await HoldPart.raw(
        "SELECT p.amount, l.id AS lot, l.expires_at FROM credits_hold_part AS p "
        "JOIN credits_lot AS l ON l.id = p.lot WHERE p.hold = {} "
        "ORDER BY l.expires_at DESC, l.id DESC",
        held.id,
    )
    left = amount
    expired = 0
    back: list[tuple[int, int]] = []
    for part in parts:
        if left == 0:
            break
        credits = min(left, part["amount"])
        left -= credits
        if part["expires_at"] <= now:
            expired += credits
        else:
            back.append((part["lot"], credits))
    entries = [
        _entry(
            held.wallet,
            kind=EntryKind.release,
            amount=amount,
            held_change=-amount,
            key=key,
            reference=held.reference,
            hold=held.id,
        )
    ]
    if expired:
        entries.append(
            _entry(
                held.wallet,
                kind=EntryKind.expire,
                amount=-expired,
                key=f"{key}:expired",
                reference=held.reference,
                hold=held.id,
            )
        )
    return expired, back, entries


_ENDED = {HoldStatus.captured: "capture", HoldStatus.released: "release"}


async def _end(
    *,
    hold_id: int,
    wallet_id: int | None,
    status: HoldStatus,
    amount: int | None = None,
    key: str | None = None,
) -> Hold:
    """End an active hold: captured (`amount`, all of it by default; the rest released) or
    released. The hold's row is changed first, so a hold ends once however many try; a hold
    already ended under `key` is returned as it is."""
    verb = _ENDED[status]
    async with write_transaction():
        now = _now()  # once the wallet's turn has come: entries are dated when written
        held = await _ended(hold_id, wallet_id, status, amount, key, now)
        if held is None:
            return await _not_ended(
                hold_id=hold_id, wallet_id=wallet_id, verb=verb, amount=amount, key=key
            )
        rest = held.amount - held.captured
        if rest:
            key = key or f"{verb}:{held.reference}"
            rest_key = f"{key}:rest" if status == HoldStatus.captured else key
            expired, back, given = await _give_back(held, rest, rest_key, now)
            await _moved(held.wallet, available=rest - expired, held=-rest)  # before lots
            await _lots_add(back)
            await Entry.insert(*given)
        return held


async def _ended(
    hold_id: int,
    wallet_id: int | None,
    status: HoldStatus,
    amount: int | None,
    key: str | None,
    now: datetime,
) -> Hold | None:
    """The hold's row ended if it is active (and in the wallet, and holds `amount`) and, for
    a capture, its entry written and the captured credits taken from the wallet's held ones;
    None, with nothing changed, otherwise. One statement on PostgreSQL, three on SQLite."""
    if amount is not None and amount < 0:
        return None
    args: list[object] = [status.value]
    if amount is None:
        captured = "amount"
    else:
        captured = "{}"
        args.append(amount)
    where = "id = {} AND status = {}"
    args += [now, hold_id, HoldStatus.active.value]
    if amount is not None:
        where += " AND amount >= {}"
        args.append(amount)
    if wallet_id is not None:
        where += " AND wallet = {}"
        args.append(wallet_id)
    update = (
        f"UPDATE credits_hold SET status = {{}}, captured = {captured}, ended_at = {{}} "  # noqa: S608
        f"WHERE {where} RETURNING *"
    )
    capture = status == HoldStatus.captured
    if capture and is_postgres():
        rows = await Hold.raw(
            f"WITH h AS ({update}), "  # noqa: S608
            "e AS (INSERT INTO credits_entry (wallet, kind, amount, held_change, "
            "idempotency_key, reference, hold, memo, created_at) "
            "SELECT wallet, {}, 0, -captured, " + ("{}" if key else "{} || reference") + ", "
            "reference, id, '', {} FROM h), "
            "w AS (UPDATE credits_wallet SET held = credits_wallet.held - h.captured FROM h "
            "WHERE credits_wallet.id = h.wallet) "
            "SELECT * FROM h",
            *args,
            EntryKind.capture.value,
            key or f"{_ENDED[status]}:",
            now,
        )
        return Hold(_exists_in_db=True, **rows[0]) if rows else None
    if capture:
        row = await in_writer_thread(_capture_sqlite, qmarks(update), args, key, now)
        return Hold(_exists_in_db=True, **row) if row else None
    rows = await Hold.raw(update, *args)
    return Hold(_exists_in_db=True, **rows[0]) if rows else None


def _capture_sqlite(
    db: sqlite3.Connection, update: str, args: list[object], key: str | None, now: datetime
) -> dict[str, Any] | None:
    """SQLite, in one batch in the connection's thread: the hold's row ended (`update`), its
    capture entry written and the captured credits taken from the wallet's held ones."""
    rows = db.execute(update, args).fetchall()
    if not rows:
        return None
    held = rows[0]
    db.execute(
        f"INSERT INTO credits_entry ({_HOLD_ENTRY_COLUMNS}) "  # noqa: S608
        "VALUES (?, ?, 0, ?, ?, ?, ?, '', ?)",
        (
            held["wallet"],
            EntryKind.capture.value,
            -held["captured"],
            key or f"capture:{held['reference']}",
            held["reference"],
            held["id"],
            now,
        ),
    )
    if not db.execute(qmarks(_MOVE), _move_args(held["wallet"], 0, -held["captured"])).fetchall():
        raise RuntimeError(f"wallet {held['wallet']}: its balances would go below zero")
    return held


async def _not_ended(
    *, hold_id: int, wallet_id: int | None, verb: str, amount: int | None, key: str | None
) -> Hold:
    """Why a hold could not be ended: asked again (the hold as it is), or an error."""
    wallet = None
    if wallet_id is not None:
        wallet = await Wallet.objects().where(Wallet.id == wallet_id).first()
        if wallet is None:
            raise NotFound(N_("This wallet does not exist."))
    held = await Hold.objects().where(Hold.id == hold_id).first()
    key = key or f"{verb}:{held.reference if held else hold_id}"
    if (done := await _done(key)) is not None:
        return await _hold(done.hold)
    if held is None or (wallet is not None and held.wallet != wallet.id):
        raise NotFound(N_("This hold does not exist."))
    if held.status != HoldStatus.active.value:
        raise Conflict(N_("This hold has already ended."), code="hold_ended")
    if amount is not None and not 0 <= amount <= held.amount:
        raise ValidationFailed({"amount": N_("A capture cannot exceed its hold.")})
    raise RuntimeError(f"hold {hold_id} is active but could not be ended")


async def capture(
    *, wallet_id: int, hold_id: int, amount: int | None = None, key: str | None = None
) -> Hold:
    """Debit a hold (all of it by default, or less: the rest is released)."""
    return await _end(
        hold_id=hold_id, wallet_id=wallet_id, status=HoldStatus.captured, amount=amount, key=key
    )


async def release(*, wallet_id: int, hold_id: int, key: str | None = None) -> Hold:
    """Give a hold's credits back (cancelled in time, free answer, missed deadline)."""
    return await _end(
        hold_id=hold_id, wallet_id=wallet_id, status=HoldStatus.released, amount=0, key=key
    )


async def finish(*, hold_id: int, amount: int, reference: str) -> Hold:
    """End a hold with what the exchange costs: `amount` captured (the rest released), or
    all of it released when the exchange costs nothing. Keys follow `reference`."""
    if amount > 0:
        return await _end(
            hold_id=hold_id,
            wallet_id=None,
            status=HoldStatus.captured,
            amount=amount,
            key=f"capture:{reference}",
        )
    return await _end(
        hold_id=hold_id,
        wallet_id=None,
        status=HoldStatus.released,
        amount=0,
        key=f"release:{reference}",
    )


async def capture_all(*, amounts: dict[int, int]) -> list[Hold]:
    """Capture holds wholly, many at once (hold id -> the credits it should hold): the
    workers' form of capture(), in the caller's transaction. Each hold still active and
    holding exactly that amount is captured, with the key `capture:<its reference>`; the
    others are left as they are (capture() one by one says why). Returns those captured."""
    if not amounts:
        return []
    now = _now()
    cases = " ".join("WHEN {} THEN CAST({} AS INTEGER)" for _ in amounts)
    ids = ", ".join("{}" for _ in amounts)
    async with write_transaction():
        rows = await Hold.raw(
            "UPDATE credits_hold SET status = {}, captured = amount, ended_at = {} "  # noqa: S608
            f"WHERE status = {{}} AND id IN ({ids}) AND amount = CASE id {cases} END "
            "RETURNING *",
            HoldStatus.captured.value,
            now,
            HoldStatus.active.value,
            *amounts,
            *(value for pair in amounts.items() for value in pair),
        )
        captured = [Hold(_exists_in_db=True, **row) for row in rows]
        if not captured:
            return []
        await Entry.insert(
            *(
                _entry(
                    held.wallet,
                    kind=EntryKind.capture,
                    amount=0,
                    held_change=-held.amount,
                    key=f"capture:{held.reference}",
                    reference=held.reference,
                    hold=held.id,
                )
                for held in captured
            )
        )
        spent: dict[int, int] = {}
        for held in captured:
            spent[held.wallet] = spent.get(held.wallet, 0) + held.amount
        for wallet_id in sorted(spent):  # wallets locked in one order by every batch
            await _moved(wallet_id, held=-spent[wallet_id])
        return captured


async def debit(*, wallet_id: int, credits: int, reference: str, key: str, memo: str = "") -> Entry:
    """Take credits without a hold (a negative adjustment), oldest-expiring lots first."""
    _positive(credits, "credits")
    async with _locked(wallet_id) as wallet:
        if (done := await _done(key)) is not None:
            return done
        await _take(wallet, credits, _now())
        return await _write(
            wallet, kind=EntryKind.adjust, amount=-credits, key=key, reference=reference, memo=memo
        )


async def refund(
    *, wallet_id: int, lot_id: int, credits: int, key: str, reference: str
) -> tuple[Entry | None, int]:
    """Take back up to `credits` unused credits of one lot (a refunded or disputed payment).

    Returns the entry (None when nothing was left to take) and the shortfall: what was asked
    but had already been used, held or expired.
    """
    _positive(credits, "credits")
    async with _locked(wallet_id) as wallet:
        if (done := await _done(key)) is not None:
            return done, credits + done.amount
        lot = await Lot.objects().where((Lot.id == lot_id) & (Lot.wallet == wallet.id)).first()
        if lot is None:
            raise NotFound(N_("This lot does not exist."))
        taken = min(credits, lot.remaining)
        if taken == 0:
            return None, credits
        await Lot.update({Lot.remaining: Lot.remaining - taken}).where(Lot.id == lot.id)
        entry = await _write(
            wallet, kind=EntryKind.refund, amount=-taken, key=key, reference=reference, lot=lot.id
        )
        return entry, credits - taken


async def restore(
    *, wallet_id: int, lot_id: int, credits: int, key: str, reference: str
) -> Entry | None:
    """Give back up to `credits` that `refund` took from a lot, into that lot (with its
    expiry): a dispute closed in the client's favour. Credits whose lot has expired
    meanwhile come back and expire at once. None when nothing was missing from the lot."""
    _positive(credits, "credits")
    async with _locked(wallet_id) as wallet:
        if (done := await _done(key)) is not None:
            return done
        lot = await Lot.objects().where((Lot.id == lot_id) & (Lot.wallet == wallet.id)).first()
        if lot is None:
            raise NotFound(N_("This lot does not exist."))
        back = min(credits, lot.credits - lot.remaining)
        if back == 0:
            return None
        expired = lot.expires_at <= _now()
        if not expired:
            await Lot.update({Lot.remaining: Lot.remaining + back}).where(Lot.id == lot.id)
        entry = await _write(
            wallet, kind=EntryKind.grant, amount=back, key=key, reference=reference, lot=lot.id
        )
        if expired:
            await _write(
                wallet,
                kind=EntryKind.expire,
                amount=-back,
                key=f"{key}:expired",
                reference=reference,
                lot=lot.id,
            )
        return entry


async def expire_due(*, wallet_id: int, now: datetime | None = None) -> int:
    """Expire what is left of the wallet's lots past their date; returns the credits."""
    now = now or _now()
    async with _locked(wallet_id) as wallet:
        lots = await Lot.objects().where(
            (Lot.wallet == wallet.id) & (Lot.remaining > 0) & (Lot.expires_at <= now)
        )
        total = 0
        for lot in lots:
            await Lot.update({Lot.remaining: 0}).where(Lot.id == lot.id)
            await _write(
                wallet,
                kind=EntryKind.expire,
                amount=-lot.remaining,
                key=f"expire:lot:{lot.id}",
                reference=lot.reference,
                lot=lot.id,
            )
            total += lot.remaining
        await record_many(
            [
                (
                    "lot.expired",
                    f"lot:{lot.id}:expired",
                    {"lot": lot.id, "wallet": wallet.id, "credits": lot.remaining},
                )
                for lot in lots
            ]
        )
        return total


async def balance(*, wallet_id: int) -> Balance:
    row = await Wallet.select(Wallet.available, Wallet.held).where(Wallet.id == wallet_id).first()
    if row is None:
        raise NotFound(N_("This wallet does not exist."))
    return Balance(available=row["available"], held=row["held"])


async def wallet_check(*, wallet_id: int) -> list[str]:
    """Every broken rule of one wallet, in words; empty when the wallet is sound."""
    wallet = await Wallet.objects().get(Wallet.id == wallet_id)
    if wallet is None:
        raise NotFound(N_("This wallet does not exist."))
    entries = await Entry.select(Entry.amount, Entry.held_change, Entry.kind, Entry.hold).where(
        Entry.wallet == wallet_id
    )
    lots = await Lot.select(Lot.remaining, Lot.credits).where(Lot.wallet == wallet_id)
    holds = await Hold.objects().where(Hold.wallet == wallet_id)
    problems = []
    sum_amount = sum(e["amount"] for e in entries)
    sum_held = sum(e["held_change"] for e in entries)
    if wallet.available != sum_amount:
        problems.append(f"available {wallet.available} != sum of entries {sum_amount}")
    if wallet.held != sum_held:
        problems.append(f"held {wallet.held} != sum of held changes {sum_held}")
    remaining = sum(lot["remaining"] for lot in lots)
    if wallet.available != remaining:
        problems.append(f"available {wallet.available} != credits left in lots {remaining}")
    if any(not 0 <= lot["remaining"] <= lot["credits"] for lot in lots):
        problems.append("a lot's remaining credits are out of range")
    active = sum(h.amount for h in holds if h.status == HoldStatus.active.value)
    if wallet.held != active:
        problems.append(f"held {wallet.held} != active holds {active}")
    if wallet.available < 0 or wallet.held < 0:
        problems.append("a balance is negative")
    for h in holds:
        own = [e for e in entries if e["hold"] == h.id]
        outstanding = sum(e["held_change"] for e in own)
        expected = h.amount if h.status == HoldStatus.active.value else 0
        if outstanding != expected:
            problems.append(f"hold {h.id} ({h.status}) still holds {outstanding}")
        if h.captured > h.amount:
            problems.append(f"hold {h.id} captured {h.captured} > {h.amount}")
        if sum(1 for e in own if e["kind"] == EntryKind.capture.value) > 1:
            problems.append(f"hold {h.id} captured twice")
    return problems
