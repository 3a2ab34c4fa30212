"""A row that is missing when it is read back fails with a domain error (or is skipped),
never with an AttributeError on None further on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from portal.credits import ledger
from portal.errors import NotFound
from portal.notify.services import Email, Outbox, notify, send_one
from portal.notify.tables import Notification
from tests.support import make_expert, make_user

LATER = datetime.now(UTC) + timedelta(days=3650)


async def test_a_hold_asked_with_a_key_that_moved_no_hold_is_not_found() -> None:
    client, expert = await make_user(), await make_expert()
    wallet = await ledger.wallet_for(client_id=client.id, expert_id=expert.id)
    await ledger.grant(
        wallet_id=wallet.id, credits=5, expires_at=LATER, reference="gift:1", key="gift:1"
    )
    with pytest.raises(NotFound) as caught:  # the key names a grant: no hold to return
        await ledger.hold(wallet_id=wallet.id, amount=2, reference="booking:1", key="gift:1")
    assert caught.value.code == "not_found"
    assert await ledger.balance(wallet_id=wallet.id) == ledger.Balance(available=5, held=0)


async def test_finishing_a_hold_that_does_not_exist_is_not_found() -> None:
    with pytest.raises(NotFound):
        await ledger.finish(hold_id=404, amount=1, reference="booking:404")


async def test_checking_a_wallet_that_does_not_exist_is_not_found() -> None:
    with pytest.raises(NotFound):
        await ledger.wallet_check(wallet_id=404)


async def test_an_email_gone_once_taken_is_not_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await make_user()
    await notify(
        user=user,
        kind="test",
        key="test:gone",
        compose=lambda: Email(subject="Hello", lines=["Hello."]),
    )
    row = await Notification.objects().where(Notification.key == "test:gone").first()
    assert row is not None

    class Purged:  # its row deleted between being taken and being read
        def get(self, where: Any) -> Any:
            async def nothing() -> None:
                return None

            return nothing()

    monkeypatch.setattr(Notification, "objects", classmethod(lambda cls, *columns: Purged()))
    outbox = Outbox(smtp_url=None, folder=tmp_path / "outbox", sender="n@p.test")
    assert await send_one(row.id, outbox) is False
    assert not (tmp_path / "outbox").exists()
