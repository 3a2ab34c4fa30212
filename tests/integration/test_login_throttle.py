"""Login throttling, shared by every process through Redis: guessing stays slow, and nobody
can lock an account's owner out.

- per (address, account): a few free failures, then each attempt waits twice as long as
  the one before (1 s, 2 s, 4 s… at most PAIR_CAP_S): the owner who mistyped waits
  seconds, a guesser from that address gets a handful of tries an hour;
- per account, from addresses that never logged in to it: ACCOUNT_FREE failures in all,
  then the same doubling — many addresses guessing together are slowed as one;
- per address: ADDRESS_LIMIT failures an hour across every account (spraying).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from httpx import AsyncClient, Response
from litestar import Litestar

from portal.accounts.throttle import ACCOUNT_FREE, ADDRESS_LIMIT, PAIR_FREE, LoginThrottle
from portal.redis import connect
from portal.settings import get_settings
from tests.integration.conftest import BASE
from tests.support import PASSWORD, csrf_token, login, make_user, post_form

WRONG = {"email": "a@example.org", "password": "wrong guess"}
RIGHT = {"email": "a@example.org", "password": PASSWORD}


@asynccontextmanager
async def from_address(app: Litestar, address: str) -> AsyncIterator[AsyncClient]:
    """A browser at another client address, on the same running app."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with AsyncClient(transport=transport, base_url=BASE, follow_redirects=True) as browser:
        yield browser


async def _post(client: AsyncClient, data: dict[str, str], token: str = "") -> Response:
    """One login attempt, quick: with a token fetched beforehand (waits are of seconds)."""
    data = data | {"_csrf_token": token or await csrf_token(client)}
    return await client.post("/login", data=data, follow_redirects=False)


async def _fail(client: AsyncClient, times: int, data: dict[str, str] = WRONG) -> list[int]:
    token = await csrf_token(client)
    return [(await _post(client, data, token)).status_code for _ in range(times)]


def _slots_opened(started: float) -> int:
    """How many more attempts the doubling waits (1 s, 2 s, 4 s…) let through since then."""
    return int(math.log2(time.monotonic() - started + 1))


async def test_the_owner_gets_in_after_a_short_wait(
    client: AsyncClient, other_client: AsyncClient
) -> None:
    await make_user("a@example.org")
    other_token = await csrf_token(other_client)
    assert await _fail(client, PAIR_FREE) == [400] * PAIR_FREE
    # Then each attempt waits: the other process knows it too, even for the right password.
    blocked = await _post(other_client, RIGHT, other_token)
    assert blocked.status_code == 429
    assert blocked.headers["retry-after"] == "1"
    assert "Trop de tentatives échouées. Réessayez dans 1 seconde." in blocked.text
    api = await other_client.post("/api/v1/tokens", json=RIGHT)
    assert api.status_code == 429 and api.json()["code"] == "throttled"
    await asyncio.sleep(1.1)
    token = await csrf_token(client)
    assert (await _post(client, WRONG, token)).status_code == 400  # refusals did not count...
    assert (await _post(client, RIGHT, token)).headers["retry-after"] == "2"  # ...doubling
    await asyncio.sleep(2.1)
    await login(other_client, "a@example.org")  # the right password, after three seconds


async def test_an_attacker_cannot_lock_the_owner_out(app: Litestar, client: AsyncClient) -> None:
    await make_user("a@example.org")
    async with from_address(app, "203.0.113.66") as attacker:
        started = time.monotonic()
        statuses = await _fail(attacker, 30)
        assert statuses[:PAIR_FREE] == [400] * PAIR_FREE
        # Then refused without looking at the password (but for a wait that ended meanwhile).
        assert statuses.count(429) >= 30 - PAIR_FREE - _slots_opened(started)
        # The owner, elsewhere, is not slowed down at all.
        await login(client, "a@example.org")
        api = await client.post("/api/v1/tokens", json=RIGHT)
        assert api.status_code == 201
        # The attacker still waits, the right password or not.
        assert (await _post(attacker, RIGHT)).status_code == 429


async def test_one_person_does_not_block_the_office(app: Litestar) -> None:
    await make_user("a@example.org")
    await make_user("colleague@example.org")
    async with from_address(app, "198.51.100.7") as office:
        assert set(await _fail(office, ADDRESS_LIMIT + 10)) == {400, 429}
        # Same address, another account: the colleague logs in at once.
        await login(office, "colleague@example.org")


async def test_many_addresses_guessing_together_are_slowed_as_one(
    app: Litestar, client: AsyncClient
) -> None:
    await make_user("a@example.org")
    await login(client, "a@example.org")  # the owner's usual address
    await post_form(client, "/logout", {}, from_page="/me")
    async with from_address(app, "192.0.2.200") as newcomer:
        token = await csrf_token(newcomer)
        for n in range(ACCOUNT_FREE):
            async with from_address(app, f"192.0.2.{n + 1}") as bot:
                assert await _fail(bot, 1) == [400]
        blocked = await _post(newcomer, RIGHT, token)
        assert blocked.status_code == 429 and blocked.headers["retry-after"] == "1"
    # An address the owner logged in from before is not slowed by the others' failures.
    await login(client, "a@example.org")


async def test_spraying_many_accounts_from_one_address_is_stopped(app: Litestar) -> None:
    await make_user("victim@example.org")
    async with from_address(app, "203.0.113.9") as sprayer:
        for n in range(ADDRESS_LIMIT):
            guess = {"email": f"guess{n}@example.org", "password": "bad"}
            assert (await post_form(sprayer, "/login", guess)).status_code == 400
        blocked = await post_form(
            sprayer, "/login", {"email": "victim@example.org", "password": PASSWORD}
        )
        assert blocked.status_code == 429
        assert 3000 < int(blocked.headers["retry-after"]) <= 3600


async def test_success_forgets_this_address_failures(client: AsyncClient) -> None:
    await make_user("a@example.org")
    assert await _fail(client, PAIR_FREE - 1) == [400] * (PAIR_FREE - 1)
    await login(client, "a@example.org")
    await post_form(client, "/logout", {}, from_page="/me")
    # A whole new allowance, then the wait.
    assert await _fail(client, PAIR_FREE + 1) == [400] * PAIR_FREE + [429]


async def test_parallel_guesses_cannot_slip_past_the_limit(client: AsyncClient) -> None:
    await make_user("a@example.org")
    started = time.monotonic()
    responses = await asyncio.gather(
        *(
            client.post("/api/v1/tokens", json={"email": "a@example.org", "password": f"guess {n}"})
            for n in range(40)
        )
    )
    statuses = [r.status_code for r in responses]
    assert statuses.count(401) + statuses.count(429) == 40
    # The free failures, and one more per wait (1 s, 2 s, 4 s…) that ended meanwhile on a
    # slow machine: never the forty a check-then-count would let through.
    assert PAIR_FREE <= statuses.count(401) <= PAIR_FREE + _slots_opened(started), statuses


async def test_guessing_the_current_password_is_throttled(client: AsyncClient) -> None:
    await make_user("a@example.org")
    await login(client, "a@example.org")
    token = await csrf_token(client, "/account")
    new = {"new_password": "new passphrase", "confirm_password": "new passphrase"}

    async def change(current: str) -> Response:
        data = new | {"current_password": current, "_csrf_token": token}
        return await client.post("/account/password", data=data, follow_redirects=False)

    for _ in range(PAIR_FREE):
        assert (await change("guess")).status_code == 422
    blocked = await change(PASSWORD)
    assert blocked.status_code == 429
    assert "Trop de tentatives échouées" in blocked.text
    await asyncio.sleep(1.1)
    assert (await change(PASSWORD)).status_code == 303


async def test_the_wait_stops_doubling_at_its_cap() -> None:
    redis = connect(get_settings().redis_url or "")
    throttle = LoginThrottle(redis, pair_free=1, pair_cap_s=1, account_free=100)
    attempt = {"email": "a@example.org", "ip": "192.0.2.1"}
    try:
        assert await throttle.attempt(**attempt) is None
        for _ in range(2):
            assert await throttle.attempt(**attempt) == 1  # 1 s, and never 2, 4...
            await asyncio.sleep(1.05)
            assert await throttle.attempt(**attempt) is None
    finally:
        await redis.aclose()
