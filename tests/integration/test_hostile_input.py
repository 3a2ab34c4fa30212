"""No input makes a 5xx: every route of the app, found from the app itself with its path
and query parameters, asked with hostile values (huge and negative numbers, impossible
dates and months, very long strings, bytes that are not UTF-8, NUL, unknown time zones...)
by an anonymous visitor, a client and an expert, on pages (forms with a valid CSRF token)
and on the JSON API (with bearer tokens)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute

from portal.booking.availability import availability_of, calendar_add, override_set
from portal.charter import rules as charter_rules
from portal.charter.services import packs_for
from portal.credits.purchases import purchase_start
from portal.ops import record_heartbeat
from portal.questions.services import ask as question_ask
from portal.redis import connect
from portal.settings import get_settings
from portal.web.auth import expert_required, login_required
from tests.integration.conftest import BASE, running
from tests.support import (
    PASSWORD,
    book_call,
    csrf_token,
    give_credits,
    login,
    make_published_expert,
    make_user,
    next_monday_at,
)

PARIS = ZoneInfo("Europe/Paris")

# Written as they travel in a URL or a form body: already percent-encoded.
NUMBERS = ["9" * 100, str(2**63), str(2**31), "-1", "0", "%C2%B2"]
DATES = [
    "0000-00",
    "9999-12",
    "10000-01",
    "2026-13",
    "9999-12-31",
    "10000-01-01",
    "9999-12-31T23%3A59%3A59-23%3A59",
    "0001-01-01T00%3A00%3A00%2B23%3A59",
]
TEXTS = ["x" * 10_000, "%FF%FE", "%00", "Mars%2FOlympus", "..%2F..%2Fetc%2Fpasswd", ""]
QUERY_VALUES = NUMBERS + DATES + TEXTS
PATH_VALUES = {  # the third is the one for people the guards stop
    int: ["0", "-1", "9" * 100, str(2**63), str(2**31), "%FF", "%00"],
    str: ["%FF%FE", "%00", "x" * 10_000, "a%0D%0Ab", "%E2%80%AE", "..%2F.."],
}
FORM_VALUES = [
    "9" * 100,
    "-1",
    "%C2%B2",
    "10000-01-01",
    "9999-12-31T23%3A59%3A59-23%3A59",
    "x" * 10_000,
    "%FF%FE",
    "%00",
]
JSON_VALUES: dict[type, list[Any]] = {
    int: [10**100, 2**63, 2**31, -1, 0],
    str: [
        "x" * 10_000,
        "\x00",
        "a\r\nb",
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+23:59",
        "Mars/Olympus",
        "\ud800",
    ],
    bool: ["yes"],
    dict: [{"x": 10**100}, {"mon": ["99:99-00:00"]}, []],
    list: [[10**100], {}],
}
# These end the session or the token the sweep uses: asked last.
LAST = ("logout", "api_token_revoke")


@dataclass
class Who:
    name: str
    http: httpx.AsyncClient
    headers: dict[str, str] = field(default_factory=dict)
    csrf: str = ""


@dataclass
class World:
    path: dict[str, str]  # a valid value per path parameter name
    query: dict[str, str]  # per query parameter name (route name:param overrides)
    forms: dict[str, dict[str, str]]  # route name -> a valid form
    json: dict[str, dict[str, Any]]  # route name -> a valid body
    failures: list[str] = field(default_factory=list)
    asked: int = 0


async def _world() -> World:
    expert = await make_published_expert()
    client = await make_user("c@example.org")
    await give_credits(client, expert, 50)
    booking = await book_call(expert, client, next_monday_at(9, weeks=2))
    question = await question_ask(
        client=client, expert=expert, body="Une question ?", urgent=False, key="q"
    )
    pack_id = (await packs_for(expert=expert))[0].id
    purchase = await purchase_start(client_id=client.id, expert=expert, pack_id=pack_id)
    tomorrow = datetime.now(PARIS).date() + timedelta(days=1)
    override = await override_set(expert, day=tomorrow, hours="", note="Férié")
    calendar = await calendar_add(expert, url="https://calendar.example.org/x.ics", name="Perso")
    availability = await availability_of(expert)
    slot = next_monday_at(10)
    charter = {
        "call_30": "2",
        "answer_price": "1",
        "timezone": "Europe/Paris",
        "hours_mon": "09:00-12:00",
        "intro": "Bonjour",
    }
    return World(
        path={
            "slug": expert.slug,
            "number": "1",
            "pack_id": str(pack_id),
            "booking_id": str(booking.id),
            "question_id": str(question.id),
            "purchase_id": str(purchase.id),
            "override_id": str(override.id),
            "calendar_id": str(calendar.id),
            "notification_id": "1",
            "filename": f"{availability.feed_token}.ics",
            "token": "1." + "0" * 64,  # a reset link never sent
            "file_path": "css/app.css",
            "path": "swagger",
        },
        query={
            "month": "2026-01",
            "day": tomorrow.isoformat(),
            "view": "week",
            "start": quote(slot.isoformat()),
            "api_slots:start": tomorrow.isoformat(),
            "api_slots:end": (tomorrow + timedelta(days=6)).isoformat(),
            "api_expert_bookings:start": tomorrow.isoformat(),
            "api_expert_bookings:end": (tomorrow + timedelta(days=6)).isoformat(),
            "duration": "30",
            "channel": "call",
            "tz": "Europe%2FParis",
            "move": str(booking.id),
            "urgent": "on",
            "follows": str(question.id),
            "status": "open",
            "next": "%2Fme",
        },
        forms={
            "book_submit": {
                "channel": "call",
                "duration": "30",
                "start": slot.isoformat(),
                "tz": "Europe/Paris",
                "key": "k",
                "charter_version": "1",
                "phone": "+33 6 12 34 56 78",
            },
            "booking_cancel": {"cost": "0"},
            "booking_move": {"start": slot.isoformat()},
            "ask_submit": {
                "body": "Bonjour",
                "urgent": "on",
                "key": "k2",
                "charter_version": "1",
                "follows": str(question.id),
            },
            "expert_question_answer": {"answer": "Voici", "kind": "expertise"},
            "expert_booking_no_show": {"absent": "client"},
            "expert_booking_cancel": {"reason": "Empêchée"},
            # No contest to answer, no no-show to contest: refused, nothing changes.
            "expert_contest_decide": {"accept": "yes"},
            "booking_contest": {"contest": "J’étais là."},
            "expert_pack_create": {"name": "Pack", "credits": "5", "price": "100"},
            "expert_clients_adjust": {
                "email": "c@example.org",
                "credits": "1",
                "reason": "Geste",
                "key": "a",
            },
            "expert_profile": {"display_name": "Alice", "headline": "Conseil", "bio": "Bio"},
            "expert_availability_save": {
                "timezone": "Europe/Paris",
                "hours_mon": "09:00-12:00",
                "call_mode": "expert_calls",
                "phone": "+33 1 23 45 67 89",
                "meeting_url": "https://meet.example.org/a",
            },
            "expert_override_save": {"day": tomorrow.isoformat(), "hours": "10:00-11:00"},
            "expert_calendar_add": {"url": "https://calendar.example.org/y.ics", "name": "Y"},
            "expert_charter_save": charter,
            "expert_charter_preview": charter,
            "account_profile": {"name": "Camille", "locale": "fr", "timezone": "Europe/Paris"},
            "test_checkout_submit": {"outcome": "pay"},
            "buy_pack_submit": {"next": "/me"},
            # An email already taken and a wrong password: the visitor stays anonymous.
            "signup_submit": {"name": "N", "email": "c@example.org", "password": PASSWORD},
            "login_submit": {"email": "c@example.org", "password": "not the password"},
            # A link that was never sent: the page says so.
            "signup_confirm_submit": {"token": "x" * 40, "password": PASSWORD, "next": "/"},
            "password_forgot_submit": {"email": "nobody@example.org"},
            # The password is wrong: the sweep's account keeps its address.
            "account_email": {"new_email": "n@example.org", "password": "not the password"},
            "account_email_confirm_submit": {},
            # The path's link was never sent: the page says so, nothing changes.
            "password_reset_submit": {"password": PASSWORD, "confirm": PASSWORD},
            "set_language": {"locale": "fr", "next": "/"},
            "set_timezone": {"timezone": "Europe/Paris", "next": "/"},
            "account_emails": {"remind_bookings": "on", "notify_credits": "on"},
            # The current password is wrong: the sweep's sessions and tokens stay valid.
            "account_password": {
                "current_password": "not the password",
                "new_password": "a new long password",
                "confirm_password": "a new long password",
            },
            "expert_charter_publish": {"reviewed": "0123456789abcdef0123"},
        },
        json={
            "api_token_create": {"email": "c@example.org", "password": "wrong"},
            "api_charter_put": msgspec.to_builtins(charter_rules.Rules()),
            "api_pack_create": {"name": "Pack", "credits": 5, "price": 1000},
            "api_checkout": {"pack_id": pack_id},
            "api_booking_create": {
                "start": slot.isoformat(),
                "duration": 30,
                "channel": "call",
                "charter_version": 1,
                "phone": "+33 6 12 34 56 78",
            },
            "api_booking_move": {"start": slot.isoformat()},
            "api_expert_booking_no_show": {"absent": "client"},
            "api_expert_booking_cancel": {"reason": "Empêchée"},
            "api_availability_put": {
                "timezone": "Europe/Paris",
                "weekly": {"mon": ["09:00-12:00"]},
                "call_mode": "expert_calls",
                "phone": "+33 1 23 45 67 89",
                "meeting_url": "",
            },
            "api_question_create": {"body": "Bonjour", "charter_version": 1},
            "api_expert_question_answer": {"body": "Voici", "billable": True},
        },
    )


def _handlers(app: Litestar) -> list[tuple[HTTPRoute, HTTPRouteHandler, str]]:
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                found.append((route, handler, method))
    return found


def _query_params(handler: HTTPRouteHandler, route: HTTPRoute) -> list[str]:
    """The handler's query parameters: what its signature takes that is neither a path
    parameter, a dependency nor a special argument."""
    special = {"request", "data", "scope", "state", "headers", "cookies", "query", "socket"}
    dependencies = set(handler.resolve_dependencies())
    return [
        name
        for name in handler.parsed_fn_signature.parameters
        if name not in special and name not in dependencies and name not in route.path_parameters
    ]


def _who_may_ask(handler: HTTPRouteHandler, people: dict[str, Who]) -> list[tuple[Who, bool]]:
    """Who asks, and whether with everything: the person the route is for is asked with
    every hostile value; the others (stopped by the guards before anything else is read,
    or seeing the same page) with hostile path parameters only."""
    guards = {getattr(guard, "func", guard) for guard in handler.resolve_guards()}
    anonymous, client, expert = people["anonymous"], people["client"], people["expert"]
    if expert_required in guards:
        return [(anonymous, False), (client, False), (expert, True)]
    if login_required in guards:
        return [(anonymous, False), (client, True), (expert, False)]
    return [(anonymous, True), (client, True)]  # a public page may differ once logged in


def _url(route: HTTPRoute, world: World, path: dict[str, str], query: dict[str, str]) -> str:
    url = route.path_format
    for name in route.path_parameters:
        url = url.replace("{" + name + "}", path.get(name, world.path[name]))
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return url


def _json_values(annotation: Any) -> list[Any]:
    """Hostile values for a field of this type (each part of a union, the type under
    Annotated)."""
    origin = get_origin(annotation) or annotation
    if origin in (Union, UnionType):
        return [v for arg in get_args(annotation) for v in _json_values(arg)]
    if origin is Annotated:
        return _json_values(get_args(annotation)[0])
    return JSON_VALUES.get(origin, [])


def _json_bodies(handler: HTTPRouteHandler, world: World) -> list[bytes]:
    """One body per (field, hostile value), from the valid one; and broken JSON."""
    data = handler.parsed_fn_signature.parameters["data"].annotation
    base = world.json.get(handler.name or "", {})
    bodies = [b'{"x": "\xff\xfe"}', b"[]", b"9" * 5000, b"{" * 5000]
    if isinstance(data, type) and issubclass(data, msgspec.Struct):
        for info in msgspec.structs.fields(data):
            for value in _json_values(info.type):
                bodies.append(json.dumps({**base, info.encode_name: value}).encode())
    return bodies


def _form_bodies(handler: HTTPRouteHandler, world: World, csrf: str) -> list[bytes]:
    """Every field of the valid form made hostile in turn, and all of them at once."""
    base = world.forms.get(handler.name or "", {})
    names = list(base) or ["x"]
    encoded = {k: quote(v, safe="") for k, v in base.items()}
    bodies = []
    for value in FORM_VALUES:
        bodies.append({name: value for name in names})
        if len(names) > 1:
            bodies += [{**encoded, name: value} for name in names]
    token = quote(csrf, safe="")
    return [
        ("&".join(f"{k}={v}" for k, v in body.items()) + f"&_csrf_token={token}").encode()
        for body in bodies
    ]


@dataclass(frozen=True)
class Ask:
    who: Who
    method: str
    url: str
    body: bytes | None = None
    kind: str = ""
    last: bool = False  # ends the session or the token: asked after everything else


async def _ask(world: World, ask: Ask) -> None:
    headers = dict(ask.who.headers)
    if ask.kind:
        headers["Content-Type"] = ask.kind
    world.asked += 1
    said = f"{ask.who.name} {ask.method} {ask.url[:120]} {(ask.body or b'')[:100]!r}"
    try:
        response = await ask.who.http.request(
            ask.method, ask.url, content=ask.body, headers=headers
        )
    except Exception as exc:  # the app itself raised: as bad as a 500
        world.failures.append(f"{said} -> {type(exc).__name__}: {exc}")
        return
    if response.status_code >= 500:
        world.failures.append(f"{said} -> {response.status_code}")


def _asks(app: Litestar, world: World, people: dict[str, Who]) -> list[Ask]:
    asks: list[Ask] = []
    for route, handler, method in _handlers(app):
        is_api = route.path.startswith("/api/")
        for who, let_in in _who_may_ask(handler, people):
            who = people[f"api-{who.name}"] if is_api else who
            ask = partial(Ask, who, method, last=handler.name in LAST)
            params = _query_params(handler, route)
            valid = {
                p: world.query.get(f"{handler.name}:{p}", world.query.get(p, "")) for p in params
            }
            url = _url(route, world, {}, valid)
            asks.append(ask(url))
            # Path parameters: each hostile in turn, the others valid.
            for name, definition in route.path_parameters.items():
                values = PATH_VALUES.get(definition.type, PATH_VALUES[str])
                for value in values if let_in else values[2:3]:
                    asks.append(ask(_url(route, world, {name: value}, {})))
            if not let_in:
                continue
            # Query parameters: each hostile in turn, the others valid.
            for name in params:
                for value in QUERY_VALUES:
                    asks.append(ask(_url(route, world, {}, {**valid, name: value})))
            # Bodies: JSON on the API, forms (with the CSRF token) on pages.
            if "data" not in handler.parsed_fn_signature.parameters:
                continue
            if is_api:
                for body in _json_bodies(handler, world):
                    asks.append(ask(url, body, "application/json"))
            else:
                for body in _form_bodies(handler, world, who.csrf):
                    asks.append(ask(url, body, "application/x-www-form-urlencoded"))
    return asks


async def _sweep(app: Litestar, world: World, people: dict[str, Who]) -> None:
    asks = _asks(app, world, people)
    # Reads first (nothing changes), then what writes, then what logs out.
    first = sorted((a for a in asks if not a.last), key=lambda a: a.method != "GET")
    last = [a for a in asks if a.last]
    gate = asyncio.Semaphore(6)

    async def run(ask: Ask) -> None:
        async with gate:
            await _ask(world, ask)

    await asyncio.gather(*(run(a) for a in first))
    for one in last:
        await _ask(world, one)


async def _person(app: Litestar, name: str, email: str | None) -> tuple[Who, Who]:
    """A browser (logged in as `email`, with its CSRF token) and an API caller (with its
    bearer token) for one person."""
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
    page, api = Who(name, http), Who(name, http)
    if email is not None:
        await login(http, email)
        response = await http.post("/api/v1/tokens", json={"email": email, "password": PASSWORD})
        api.headers["Authorization"] = "Bearer " + response.json()["token"]
    page.csrf = await csrf_token(http, "/login" if email is None else "/account")
    return page, api


async def test_no_route_answers_5xx_to_hostile_input(app: Litestar) -> None:
    world = await _world()
    redis = connect(get_settings().redis_url or "")
    try:
        await record_heartbeat(redis)  # /healthz says 200 with a worker alive
    finally:
        await redis.aclose()
    bodies = {h.name for _r, h, _m in _handlers(app) if "data" in h.parsed_fn_signature.parameters}
    assert bodies <= set(world.forms) | set(world.json), "valid bodies to start from are missing"
    started = time.monotonic()
    async with running(app):
        people: dict[str, Who] = {}
        for name, email in (
            ("anonymous", None),
            ("client", "c@example.org"),
            ("expert", "expert@example.org"),
        ):
            people[name], people[f"api-{name}"] = await _person(app, name, email)
        try:
            await _sweep(app, world, people)
        finally:
            for who in people.values():
                await who.http.aclose()
    elapsed = time.monotonic() - started
    print(f"{world.asked} requests in {elapsed:.1f} s")
    assert world.asked > 2000
    assert not world.failures, "\n".join(sorted(set(world.failures))[:80])


async def test_out_of_range_parameters_are_refused_with_their_reason(
    client: httpx.AsyncClient,
) -> None:
    world = await _world()
    await login(client, "c@example.org")
    statement = await client.get("/me/wallets/alice-expert/statement?month=9999-12")
    assert statement.status_code == 422
    assert "Un mois écrit AAAA-MM, de 2000-01 à 2199-12." in statement.text
    moving = await client.get("/e/alice-expert/book?move=" + "9" * 100)
    assert moving.status_code == 422 and "Non valide\u202f: move" in moving.text
    form = {**world.forms["book_submit"], "duration": "²"}
    booking = await client.post(
        "/e/alice-expert/book", data={**form, "_csrf_token": await csrf_token(client, "/me")}
    )
    assert booking.status_code == 422 and "Cet expert ne propose pas cette durée" in booking.text

    token = (
        await client.post("/api/v1/tokens", json={"email": "c@example.org", "password": PASSWORD})
    ).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    for pack_id in (2**31, 2**63, 10**100):
        checkout = await client.post(
            "/api/v1/experts/alice-expert/checkout", json={"pack_id": pack_id}, headers=bearer
        )
        assert checkout.status_code == 422, checkout.text
        assert "pack_id" in checkout.json()["errors"]

    response = await client.post(
        "/api/v1/tokens", json={"email": "expert@example.org", "password": PASSWORD}
    )
    expert = {"Authorization": "Bearer " + response.json()["token"]}
    listed = await client.get("/api/v1/expert/bookings?end=9999-12-31", headers=expert)
    assert listed.status_code == 200 and len(listed.json()) == 1
