"""Factories and HTTP helpers shared by the tests."""

from __future__ import annotations

import html
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from httpx import AsyncClient
from piccolo.apps.migrations.tables import Migration

from portal.accounts.passwords import HASHER
from portal.accounts.tables import Expert, Role, User
from portal.booking.services import SlotChoice, booking_create
from portal.booking.tables import Booking
from portal.charter.rules import Rules
from portal.charter.services import charter_publish, draft_save, pack_create
from portal.credits import ledger
from portal.db import get_engine, is_postgres
from portal.redis import connect

PASSWORD = "correct horse battery staple"
_PASSWORD_HASH = HASHER.hash(PASSWORD)  # hashed once: argon2id is slow on purpose

_CSRF_RE = re.compile(r'name="_csrf_token" value="([^"]+)"')
_SIGNUP_LINK_RE = re.compile(r"https?://[^/\s]+(/signup/confirm\?\S+)")


def all_tables() -> list[Any]:
    from piccolo.conf.apps import Finder

    return [t for t in Finder().get_table_classes() if t is not Migration]


async def reset_database() -> None:
    tables = all_tables()
    if is_postgres():
        names = ", ".join(f'"{t._meta.tablename}"' for t in tables)
        await get_engine().run_ddl(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    else:
        for table in reversed(tables):
            await get_engine().run_ddl(f'DELETE FROM "{table._meta.tablename}"')


async def reset_redis(url: str) -> None:
    redis = connect(url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


async def make_user(
    email: str = "client@example.org",
    *,
    role: Role = Role.client,
    locale: str = "fr",
    timezone: str = "Europe/Paris",
    name: str = "Camille Client",
) -> User:
    user = User(
        email=email,
        password_hash=_PASSWORD_HASH,
        role=role.value,
        locale=locale,
        timezone=timezone,
        name=name,
    )
    await user.save()
    return user


async def make_expert(email: str = "expert@example.org", slug: str = "alice-expert") -> Expert:
    user = await make_user(email, role=Role.expert, name="Alice Expert")
    expert = Expert(user=user.id, slug=slug, display_name="Alice Expert")
    await expert.save()
    return expert


def csrf_from(html: str) -> str:
    match = _CSRF_RE.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


async def csrf_token(client: AsyncClient, path: str = "/login") -> str:
    response = await client.get(path)
    return csrf_from(response.text)


async def post_form(
    client: AsyncClient,
    path: str,
    data: dict[str, str],
    *,
    from_page: str = "/login",
    **kwargs: Any,
) -> Any:
    token = await csrf_token(client, from_page)
    kwargs.setdefault("follow_redirects", False)
    return await client.post(path, data={**data, "_csrf_token": token}, **kwargs)


async def login(client: AsyncClient, email: str, password: str = PASSWORD) -> Any:
    response = await post_form(client, "/login", {"email": email, "password": password})
    assert response.status_code in (302, 303), response.text
    return response


async def emails_written() -> int:
    """Let the notify consumer write the emails of the events recorded so far, as the
    worker does after each write; the events read."""
    from portal.events.consume import consume
    from portal.notify.consumer import NOTIFY

    return await consume(NOTIFY)


async def signup_link(email: str) -> str:
    """The path (and query) of the latest sign-up link emailed to `email`."""
    from portal.notify.tables import Notification

    await emails_written()
    sent = (
        await Notification.objects()
        .where((Notification.kind == "signup_confirm") & (Notification.to_address == email))
        .order_by(Notification.id, ascending=False)
        .first()
    )
    assert sent is not None, f"no sign-up link was sent to {email}"
    match = _SIGNUP_LINK_RE.search(sent.text)
    assert match, sent.text
    return match.group(1)


async def finish_signup(client: AsyncClient, email: str, password: str) -> Any:
    """Open the emailed link and give the password chosen, as the visitor does."""
    link = await signup_link(email)
    page = await client.get(link)
    fields = {
        name: html.unescape(value)
        for name, value in re.findall(r'name="(token|next)" value="([^"]*)"', page.text)
    }
    assert "token" in fields, page.text
    return await post_form(
        client, "/signup/confirm", fields | {"password": password}, from_page=link
    )


async def make_published_expert(
    email: str = "expert@example.org",
    slug: str = "alice-expert",
    rules: Rules | None = None,
    packs: tuple[tuple[str, int, int], ...] = (("Starter", 10, 400_00),),
) -> Expert:
    """An expert with version 1 of a charter published and packs on sale."""
    expert = await make_expert(email, slug)
    await draft_save(expert=expert, rules=rules or Rules())
    await charter_publish(expert=expert)
    for name, credits, price_minor in packs:
        await pack_create(expert=expert, name=name, credits=credits, price_minor=price_minor)
    return expert


def run_in_thread(coro: Any) -> Any:
    """Run database work from sync code that may already run an event loop (Playwright's),
    in a loop of its own, and close that loop's connections."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from portal.db import close_pool

    async def run_then_close() -> Any:
        try:
            return await coro
        finally:
            await close_pool()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run_then_close()).result()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def web_server(cwd: Path, *, workers: int = 1, log_name: str = "web.log") -> Iterator[str]:
    """`portal web` in processes of its own, on the test database and Redis; its URL."""
    port = free_port()
    log_path = cwd / log_name
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "portal.cli",
                "web",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            cwd=cwd,
            env=dict(os.environ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                assert process.poll() is None, log_path.read_text()
                try:
                    urllib.request.urlopen(f"{url}/healthz", timeout=5)
                    break
                except urllib.error.HTTPError:
                    break  # it answers (503 without a worker is fine here)
                except OSError:
                    time.sleep(0.2)
            else:
                raise AssertionError(f"portal web not answering: {log_path.read_text()}")
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def give_credits(user: User, expert: Expert, credits: int, key: str = "") -> None:
    """Credits for a client with an expert, valid a year (an adjustment, as an expert's gift)."""
    wallet = await ledger.wallet_for(client_id=user.id, expert_id=expert.id)
    await ledger.grant(
        wallet_id=wallet.id,
        credits=credits,
        expires_at=datetime.now(UTC) + timedelta(days=365),
        reference="adjust:test",
        key=key or f"test-grant:{user.id}:{expert.id}",
    )


def next_monday_at(hour: int, weeks: int = 1) -> datetime:
    """That hour in Paris on the Monday `weeks` after this week's (inside default hours)."""
    paris = ZoneInfo("Europe/Paris")
    today = datetime.now(paris).date()
    monday = today + timedelta(days=7 * weeks - today.weekday())
    return datetime.combine(monday, datetime.min.time(), paris).replace(hour=hour)


async def book_call(
    expert: Expert,
    client: User,
    start: datetime,
    key: str = "k",
    phone: str = "+33 6 12 34 56 78",
) -> Booking:
    """A 30-minute call booked through the service, as the client would (credits held)."""
    return await booking_create(
        client=client,
        expert=expert,
        asked=SlotChoice(
            channel="call",
            duration=30,
            start=start,
            charter_version=1,
            key=key,
            timezone="Europe/Paris",
            phone=phone,
        ),
    )


async def make_booking(expert: Expert, client: User, start: datetime, **fields: Any) -> Booking:
    """A 30-minute call booked straight into the table (no hold), with the first charter
    version's terms; `fields` override any column (status, channel, created_at...)."""
    end = start + timedelta(minutes=30)
    values: dict[str, Any] = {
        "expert": expert.id,
        "client": client.id,
        "channel": "call",
        "duration": 30,
        "starts_at": start,
        "ends_at": end,
        "blocked_until": end + timedelta(minutes=10),
        "credits": 2,
        "charter_version": 1,
        "cancel_free_hours": 24,
        "cancel_late_forfeit_percent": 100,
        "no_show_client_percent": 100,
        "timezone": "Europe/Paris",
        "key": f"call:{start.isoformat()}",
        "uid": f"u{start.timestamp():.0f}",
    }
    booking = Booking(**(values | fields))
    await booking.save()
    return booking
