"""The `portal` command, run as a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from contextlib import suppress
from pathlib import Path

import pytest

from portal.accounts.tables import Expert, Role, User
from portal.settings import get_settings
from portal.supervise import STOP_TIMEOUT_S
from tests.conftest import TMP
from tests.processes import PORTAL, child, output, portal_run, processes_in, run_env
from tests.stripe_stub import StripeStub
from tests.support import free_port


def portal(
    *args: str, stdin: str | None = None, cwd: Path = TMP, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PORTAL, *args], input=stdin, capture_output=True, text=True, cwd=cwd, env=env, timeout=60
    )


async def test_create_expert_and_client_from_the_shell() -> None:
    done = portal(
        "create-expert",
        "--email",
        "Claire@Example.org",
        "--password",
        "-",
        "--slug",
        "claire-martin",
        "--name",
        "Claire Martin",
        stdin="a long enough secret\n",
    )
    assert done.returncode == 0, done.stderr
    assert "claire-martin" in done.stdout
    expert = await Expert.objects(Expert.user).get(Expert.slug == "claire-martin")
    assert expert.user.email == "claire@example.org" and expert.user.role == Role.expert.value

    again = portal(
        "create-expert",
        "--email",
        "x@example.org",
        "--password",
        "another secret phrase",
        "--slug",
        "claire-martin",
        "--name",
        "X",
    )
    assert again.returncode == 2
    assert "slug: This address is already taken." in again.stderr

    client = portal("create-client", "--email", "c@example.org", "--password", "short")
    assert client.returncode == 2 and "password" in client.stderr
    client = portal("create-client", "--email", "c@example.org", "--password", "long enough pass")
    assert client.returncode == 0
    assert await User.exists().where(User.email == "c@example.org")


def test_migrate_creates_the_default_database_in_var_dir(tmp_path: Path) -> None:
    var = tmp_path / "elsewhere" / "var"
    env = {**os.environ, "VAR_DIR": str(var)}
    env.pop("DATABASE_URL")
    done = subprocess.run(
        [*PORTAL, "migrate"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert (var / "portal.sqlite").is_file()
    assert not (tmp_path / "var").exists()


async def test_demo_seed_is_idempotent() -> None:
    first = portal("demo")
    second = portal("demo")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "expert@example.com" in first.stdout
    assert await User.count() == 2
    assert await Expert.count() == 1


@pytest.mark.slow
def test_portal_run_starts_answers_and_stops_cleanly(tmp_path: Path) -> None:
    with portal_run(tmp_path, "--demo") as (run, _url):
        assert child(run.pid, "worker") and child(run.pid, "web"), "processes of their own"
        os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        assert run.wait(timeout=2 * STOP_TIMEOUT_S + 10) == 0, output(tmp_path)
        assert processes_in(tmp_path) == set(), "no process left behind"
    said = output(tmp_path)
    assert "The portal is starting at http://127.0.0.1:" in said
    assert "expert@example.com" in said and "client@example.com" in said
    assert "The portal has stopped." in said
    if get_settings().database_engine == "sqlite":
        assert (tmp_path / "var" / "portal.sqlite").is_file()
        assert (tmp_path / "var" / "redis" / "portal.rdb").is_file()
    # A second start keeps the data: the demo client still logs in.
    with portal_run(tmp_path) as (_run, url):
        request = urllib.request.Request(
            f"{url}/api/v1/tokens",
            data=json.dumps(
                {"email": "client@example.com", "password": "demo-client-2026"}
            ).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201


NO_STRIPE_KEY = (
    "error: STRIPE_SECRET_KEY must be set when BASE_URL is https: "
    "without it, no one can buy credits\n"
)
NO_WEBHOOK_SECRET = (
    "error: STRIPE_WEBHOOK_SECRET must be set when BASE_URL is https: "
    "without it, every event Stripe sends (payments, refunds, disputes) is refused\n"
)


@pytest.mark.parametrize(
    ("command", "stripe", "said"),
    [
        ("web", {}, NO_STRIPE_KEY),
        ("web", {"STRIPE_WEBHOOK_SECRET": "whsec_x"}, NO_STRIPE_KEY),
        ("web", {"STRIPE_SECRET_KEY": "sk_live_x"}, NO_WEBHOOK_SECRET),
        ("run", {"STRIPE_SECRET_KEY": "sk_live_x"}, NO_WEBHOOK_SECRET),
        ("run", {"STRIPE_WEBHOOK_SECRET": "whsec_x"}, NO_STRIPE_KEY),
    ],
    ids=[
        "web-neither",
        "web-no-key",
        "web-no-webhook-secret",
        "run-no-webhook-secret",
        "run-no-key",
    ],
)
def test_https_refuses_to_serve_without_both_stripe_secrets(
    tmp_path: Path, command: str, stripe: dict[str, str], said: str
) -> None:
    env = {**run_env(), "BASE_URL": "https://portal.example.fr", **stripe}
    process = subprocess.Popen(
        [*PORTAL, command, "--port", str(free_port())],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:  # it started serving
        os.killpg(process.pid, signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        with suppress(ProcessLookupError):  # whatever it started
            os.killpg(process.pid, signal.SIGKILL)
    assert (process.returncode, err, out) == (2, said, "")


async def test_credits_grant_and_verify_from_the_shell() -> None:
    from portal.credits.tables import Entry, Wallet
    from tests.support import make_published_expert, make_user

    await make_user("c@example.org")
    await make_published_expert()
    given = portal(
        "credits",
        "grant",
        "--client",
        "c@example.org",
        "--expert",
        "alice-expert",
        "--credits",
        "5",
        "--reason",
        "Geste commercial",
    )
    assert given.returncode == 0, given.stderr
    taken = portal(
        "credits",
        "grant",
        "--client",
        "c@example.org",
        "--expert",
        "alice-expert",
        "--credits",
        "-2",
        "--reason",
        "Correction",
    )
    assert taken.returncode == 0, taken.stderr
    wallet = await Wallet.objects().first()
    assert wallet is not None and (wallet.available, wallet.held) == (3, 0)
    assert [e["memo"] for e in await Entry.select(Entry.memo).order_by(Entry.id)] == [
        "Geste commercial",
        "Correction",
    ]
    too_much = portal(
        "credits",
        "grant",
        "--client",
        "c@example.org",
        "--expert",
        "alice-expert",
        "--credits",
        "-9",
        "--reason",
        "Trop",
    )
    assert too_much.returncode == 2 and "6 missing" in too_much.stderr
    no_reason = portal(
        "credits",
        "grant",
        "--client",
        "c@example.org",
        "--expert",
        "alice-expert",
        "--credits",
        "1",
        "--reason",
        " ",
    )
    assert no_reason.returncode == 2 and "reason" in no_reason.stderr
    unknown = portal(
        "credits",
        "grant",
        "--client",
        "x@example.org",
        "--expert",
        "alice-expert",
        "--credits",
        "1",
        "--reason",
        "x",
    )
    assert unknown.returncode == 2 and "no account" in unknown.stderr

    fine = portal("credits", "verify")
    assert fine.returncode == 0 and "every wallet matches" in fine.stdout
    await Wallet.update({Wallet.held: 4}).where(Wallet.id == wallet.id)  # a corrupted cache
    broken = portal("credits", "verify")
    assert broken.returncode == 1
    assert f"wallet {wallet.id}: held 4 != sum of held changes 0" in broken.stdout
    await Wallet.update({Wallet.held: 0}).where(Wallet.id == wallet.id)


async def test_credits_reconcile_from_the_shell() -> None:
    from datetime import UTC, datetime, timedelta

    from portal.credits import ledger
    from tests.support import make_published_expert, make_user

    client = await make_user("c@example.org")
    expert = await make_published_expert()
    wallet = await ledger.wallet_for(client_id=client.id, expert_id=expert.id)
    await ledger.grant(
        wallet_id=wallet.id,
        credits=3,
        expires_at=datetime.now(UTC) - timedelta(days=1),
        reference="adjust:old",
        key="old",
    )
    done = portal("credits", "reconcile")
    assert done.returncode == 0, done.stderr
    assert "purchases checked 0" in done.stdout and "credits expired 3" in done.stdout
    assert portal("credits", "reconcile").stdout.endswith("credits expired 0\n")


async def test_credits_reconcile_counts_a_purchase_paid_with_another_amount(
    stripe_stub: StripeStub,
) -> None:
    from datetime import UTC, datetime, timedelta

    from portal.charter.tables import CreditPack
    from portal.credits.purchases import purchase_start
    from portal.credits.tables import Purchase, PurchaseStatus
    from tests.support import make_published_expert, make_user

    client, expert = await make_user("c@example.org"), await make_published_expert()
    pack = await CreditPack.objects().get(CreditPack.expert == expert.id)
    purchase = await purchase_start(client_id=client.id, expert=expert, pack_id=pack.id)
    session = stripe_stub.session(
        purchase.id, status="complete", payment_status="paid", amount_total=1, currency="eur"
    )
    await Purchase.update(
        {
            Purchase.checkout_session: session,
            Purchase.created_at: datetime.now(UTC) - timedelta(hours=1),
        }
    ).where(Purchase.id == purchase.id)
    stripe = {"STRIPE_SECRET_KEY": "sk_test_portal", "STRIPE_API_BASE": stripe_stub.url}
    done = portal("credits", "reconcile", env={**os.environ, **stripe})
    assert done.returncode == 0, done.stderr
    assert "purchases checked 1: paid 0" in done.stdout
    assert "mismatched 1 (failed, nothing granted)" in done.stdout
    stored = await Purchase.objects().get(Purchase.id == purchase.id)
    assert stored.status == PurchaseStatus.failed.value
