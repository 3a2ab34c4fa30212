"""Login throttling, shared by every process through Redis: guessing stays slow, and nobody
can lock an account's owner out.

- per (address, account): a few free failures, then each attempt waits twice as long as
  the one before (1 s, 2 s, 4 s… at most PAIR_CAP_S): the owner who mistyped waits
  seconds, a guesser from that address gets a handful of tries an hour;
- per account, from addresses that never logged in to it: ACCOUNT_FREE failures in all,
  then the same doubling — many addresses guessing together are slowed as one; the owner,
  from a new address, gets in at once with a code emailed to the account;
- per address: ADDRESS_LIMIT failures an hour across every account (spraying), which does
  not hold an owner at an address where they logged in before.

The base of the doubling is set per test (`unit`): a minute where a wait must hold while
the test looks (whatever the machine's load), a millisecond where it must end.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from httpx import AsyncClient, Response
from litestar import Litestar

from portal.accounts import throttle
from portal.accounts.throttle import ACCOUNT_FREE, ADDRESS_LIMIT, PAIR_FREE, LoginThrottle
from portal.notify.tables import Notification
from portal.redis import connect
from portal.settings import get_settings
from tests.integration.conftest import BASE
from tests.support import PASSWORD, csrf_token, emails_written, login, make_user, post_form

WRONG = {"email": "a@example.org", "password": "wrong guess"}
RIGHT = {"email": "a@example.org", "password": PASSWORD}
HELD = 60.0  # seconds: a wait that cannot end while a test looks at it
ENDS = 0.001  # a wait over before the next request


@pytest.fixture(autouse=True)
def unit(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Set the doubling's first wait (HELD unless a test says otherwise)."""

    def set_unit(seconds: float) -> None:
        monkeypatch.setattr(throttle, "UNIT_S", seconds)

    set_unit(HELD)
    return set_unit


@asynccontextmanager
async def from_address(app: Litestar, address: str) -> AsyncIterator[AsyncClient]:
    """A browser at another client address, on the same running app."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with AsyncClient(transport=transport, base_url=BASE, follow_redirects=True) as browser:
        yield browser


async def _post(client: AsyncClient, data: dict[str, str], token: str = "") -> Response:
    """One login attempt, with a token fetched beforehand if given."""
    data = data | {"_csrf_token": token or await csrf_token(client)}
    return await client.post("/login", data=data, follow_redirects=False)


async def _fail(client: AsyncClient, times: int, data: dict[str, str] = WRONG) -> list[int]:
    token = await csrf_token(client)
    return [(await _post(client, data, token)).status_code for _ in range(times)]


async def _from_many_addresses(app: Litestar, email: str = "a@example.org") -> None:
    """A botnet: ACCOUNT_FREE failures on the account, each from another address."""
    for n in range(ACCOUNT_FREE):
        async with from_address(app, f"192.0.2.{n + 1}") as bot:
            assert await _fail(bot, 1, {"email": email, "password": "guess"}) == [400]


async def _codes_sent(email: str = "a@example.org") -> list[str]:
    await emails_written()
    sent = (
        await Notification.objects()
        .where((Notification.kind == "login_code") & (Notification.to_address == email))
        .order_by(Notification.id)
    )
    return [re.search(r"^([A-Z2-9]{8})$", n.text, re.MULTILINE).group(1) for n in sent]  # type: ignore[union-attr]


def _main(html: str, email: str) -> str:
    """The page's content, without the address typed and the browser's CSRF token."""
    main = html[html.index("<main") : html.index("</main>")]
    return re.sub(r'value="[0-9a-f]{64}"', "TOKEN", main.replace(email, "EMAIL"))


async def test_the_owner_gets_in_after_a_short_wait(
    client: AsyncClient, other_client: AsyncClient, unit: Callable[[float], None]
) -> None:
    await make_user("a@example.org")
    other_token = await csrf_token(other_client)
    assert await _fail(client, PAIR_FREE) == [400] * PAIR_FREE
    # Then each attempt waits: the other process knows it too, even for the right password.
    blocked = await _post(other_client, RIGHT, other_token)
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["retry-after"]) <= HELD
    assert "Trop de tentatives échouées. Réessayez dans 1 minute." in blocked.text
    api = await other_client.post("/api/v1/tokens", json=RIGHT)
    assert api.status_code == 429 and api.json()["code"] == "throttled"
    token = await csrf_token(client)
    assert (await _post(client, WRONG, token)).status_code == 429  # refused, not counted
    unit(ENDS)
    assert (await _post(client, WRONG, token)).status_code == 400  # the 6th failure
    unit(HELD)
    doubled = await _post(client, RIGHT, token)  # twice the first wait, not four times
    assert HELD < int(doubled.headers["retry-after"]) <= 2 * HELD
    unit(ENDS)
    await login(other_client, "a@example.org")


async def test_a_wait_of_seconds_says_seconds(
    client: AsyncClient, unit: Callable[[float], None]
) -> None:
    await make_user("a@example.org")
    unit(30)
    await _fail(client, PAIR_FREE)
    blocked = await _post(client, RIGHT)
    assert re.search(r"Trop de tentatives échouées\. Réessayez dans \d+ secondes\.", blocked.text)


async def test_an_attacker_cannot_lock_the_owner_out(app: Litestar, client: AsyncClient) -> None:
    await make_user("a@example.org")
    async with from_address(app, "203.0.113.66") as attacker:
        statuses = await _fail(attacker, 30)
        # The free failures, then refused without looking at the password.
        assert statuses == [400] * PAIR_FREE + [429] * (30 - PAIR_FREE)
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


async def test_spraying_from_an_owners_address_does_not_block_the_owner(app: Litestar) -> None:
    """The address's ceiling stops spraying, not an owner who logged in there before."""
    await make_user("a@example.org")
    await make_user("newcomer@example.org")
    async with from_address(app, "198.51.100.50") as office:
        await login(office, "a@example.org")
        await post_form(office, "/logout", {}, from_page="/me")
        token = await csrf_token(office)
        for n in range(ADDRESS_LIMIT):
            guess = {"email": f"guess{n}@example.org", "password": "bad"}
            assert (await _post(office, guess, token)).status_code == 400
        # The address is over its ceiling: an account never used from it waits...
        newcomer = {"email": "newcomer@example.org", "password": PASSWORD}
        blocked = await _post(office, newcomer, token)
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 3000
        # ...not the owner, who logged in from here before: no wait, the right password in.
        await login(office, "a@example.org")
        # Still under the per-(address, account) doubling: a few failures, then a wait.
        await post_form(office, "/logout", {}, from_page="/me")
        assert await _fail(office, PAIR_FREE + 1) == [400] * PAIR_FREE + [429]


async def test_many_addresses_guessing_together_are_slowed_as_one(
    app: Litestar, client: AsyncClient
) -> None:
    await make_user("a@example.org")
    await login(client, "a@example.org")  # the owner's usual address
    await post_form(client, "/logout", {}, from_page="/me")
    await _from_many_addresses(app)
    async with from_address(app, "192.0.2.200") as newcomer:
        blocked = await _post(newcomer, RIGHT)
        assert blocked.status_code == 429
        assert 0 < int(blocked.headers["retry-after"]) <= HELD
        api = await newcomer.post("/api/v1/tokens", json=RIGHT)
        assert api.status_code == 429 and api.json()["code"] == "code_required"
    # An address the owner logged in from before is not slowed by the others' failures.
    await login(client, "a@example.org")


async def test_an_owner_on_a_new_network_gets_in_with_the_emailed_code(app: Litestar) -> None:
    """Failures from many addresses hold the account for new addresses; the owner is sent a
    code by email, and with it and the password gets in at once."""
    await make_user("a@example.org", locale="en")
    await _from_many_addresses(app)
    async with from_address(app, "203.0.113.80") as phone:
        token = await csrf_token(phone)
        held = await _post(phone, RIGHT, token)
        assert held.status_code == 429 and 0 < int(held.headers["retry-after"]) <= HELD
        assert "Ce compte est protégé après de nombreuses tentatives échouées" in held.text
        assert 'name="code"' in held.text
        [code] = await _codes_sent()
        [email] = await Notification.objects().where(Notification.kind == "login_code")
        assert email.subject == "Your login code"  # in the account's language
        # A wrong code changes nothing (and is a failure: guessing codes is slow too).
        wrong = await _post(phone, RIGHT | {"code": "ABCDEFGH"}, token)
        assert wrong.status_code == 429 and "Ce code n’est pas valable" in wrong.text
        # The right code with a wrong password is a failure, and the code still works.
        assert (await _post(phone, WRONG | {"code": code}, token)).status_code == 400
        done = await _post(phone, RIGHT | {"code": f" {code[:4].lower()}-{code[4:]} "}, token)
        assert done.status_code == 303
    # The code works once; and is sent at most once every 15 minutes.
    async with from_address(app, "203.0.113.81") as laptop:
        again = await _post(laptop, RIGHT | {"code": code})
        assert again.status_code == 429 and "Ce code n’est pas valable" in again.text
    assert len(await _codes_sent()) == 1


async def test_the_token_endpoint_takes_the_code_and_a_code_opens_one_account(
    app: Litestar,
) -> None:
    await make_user("a@example.org")
    await make_user("b@example.org")
    await _from_many_addresses(app, "a@example.org")
    await _from_many_addresses(app, "b@example.org")
    async with from_address(app, "203.0.113.80") as script:
        held = await script.post("/api/v1/tokens", json=RIGHT)
        assert held.status_code == 429 and held.json()["code"] == "code_required"
        assert "code" in held.json()["detail"] and held.headers["retry-after"]
        [code] = await _codes_sent("a@example.org")
        other = {"email": "b@example.org", "password": PASSWORD, "code": code}
        assert (await script.post("/api/v1/tokens", json=other)).status_code == 429
        created = await script.post("/api/v1/tokens", json=RIGHT | {"code": code})
        assert created.status_code == 201
    # Kept as a keyed hash, for 15 minutes: the code itself is nowhere in Redis.
    redis = connect(get_settings().redis_url or "")
    try:
        keys = [k.decode() for k in await redis.keys("portal:login-code:*")]
        assert keys, "no code kept"
        for key in keys:
            assert code not in key and code.encode() not in (await redis.get(key) or b"")
            assert 0 < await redis.ttl(key) <= 15 * 60
    finally:
        await redis.aclose()


async def test_the_answer_is_the_same_whether_the_account_exists(app: Litestar) -> None:
    await make_user("a@example.org")
    answers = {}
    for email in ("a@example.org", "nobody@example.org"):
        await _from_many_addresses(app, email)
        async with from_address(app, "203.0.113.90") as visitor:
            response = await _post(visitor, {"email": email, "password": PASSWORD})
            api = await visitor.post("/api/v1/tokens", json={"email": email, "password": "x"})
        answers[email] = (response.status_code, _main(response.text, email), api.json())
    assert answers["a@example.org"] == answers["nobody@example.org"]
    assert len(await _codes_sent("a@example.org")) == 1
    assert await Notification.count().where(Notification.to_address == "nobody@example.org") == 0


async def test_success_forgets_this_address_failures(
    client: AsyncClient, unit: Callable[[float], None]
) -> None:
    await make_user("a@example.org")
    assert await _fail(client, PAIR_FREE - 1) == [400] * (PAIR_FREE - 1)
    await login(client, "a@example.org")
    await post_form(client, "/logout", {}, from_page="/me")
    # A whole new allowance, then the wait.
    assert await _fail(client, PAIR_FREE + 1) == [400] * PAIR_FREE + [429]


async def test_parallel_guesses_cannot_slip_past_the_limit(client: AsyncClient) -> None:
    await make_user("a@example.org")
    responses = await asyncio.gather(
        *(
            client.post("/api/v1/tokens", json={"email": "a@example.org", "password": f"guess {n}"})
            for n in range(40)
        )
    )
    statuses = [r.status_code for r in responses]
    # The free failures, never the forty a check-then-count would let through.
    assert sorted(statuses) == [401] * PAIR_FREE + [429] * (40 - PAIR_FREE), statuses


async def test_guessing_the_current_password_is_throttled(
    client: AsyncClient, unit: Callable[[float], None]
) -> None:
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
    unit(ENDS)
    assert (await change(PASSWORD)).status_code == 303


async def test_the_wait_stops_doubling_at_its_cap() -> None:
    redis = connect(get_settings().redis_url or "")
    # Waits of 0.2 s, then 0.4 s, and never 0.8 s.
    limiter = LoginThrottle(redis, pair_free=1, pair_cap_s=0.4, account_free=100, unit_s=0.2)
    attempt = {"email": "a@example.org", "ip": "192.0.2.1"}
    try:
        assert (await limiter.attempt(**attempt)).wait_ms == 0
        waits = []
        for _ in range(3):
            waits.append((await limiter.attempt(**attempt)).wait_ms)
            await asyncio.sleep(waits[-1] / 1000 + 0.02)
            assert (await limiter.attempt(**attempt)).wait_ms == 0
        assert 0 < waits[0] <= 200 < waits[1] <= 400 and 200 < waits[2] <= 400, waits
    finally:
        await redis.aclose()
