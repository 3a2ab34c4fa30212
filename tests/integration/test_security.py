"""CSRF on every unsafe request, bound to the session; host checks; escaping. (Login
throttling: test_login_throttle.py.)"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from httpx import AsyncClient

from portal.accounts.tables import User
from portal.app import create_app
from portal.settings import get_settings
from tests.integration.conftest import BASE, running
from tests.support import PASSWORD, csrf_from, csrf_token, login, make_user, post_form


async def test_form_post_without_csrf_token_is_refused_with_an_explanation(
    client: AsyncClient,
) -> None:
    await make_user("a@example.org")
    await client.get("/login")  # the browser has the CSRF cookie, but the form lacks the field
    response = await client.post(
        "/login",
        data={"email": "a@example.org", "password": PASSWORD},
        headers={"Referer": "http://127.0.0.1:8000/login"},
    )
    assert response.status_code == 403
    assert "Ce formulaire a expiré" in response.text
    assert "Rien n’a été enregistré." in response.text
    assert 'href="/login"' in response.text  # a way to retry, on this site only
    assert "portal_session" not in response.headers.get("set-cookie", "")


async def test_stale_token_from_another_browser_is_refused(
    client: AsyncClient, other_client: AsyncClient
) -> None:
    await make_user("a@example.org")
    foreign = await csrf_token(other_client)
    await client.get("/login")
    response = await client.post(
        "/login", data={"email": "a@example.org", "password": PASSWORD, "_csrf_token": foreign}
    )
    assert response.status_code == 403


async def test_htmx_post_without_token_is_refused_and_with_header_accepted(
    client: AsyncClient,
) -> None:
    await make_user("a@example.org")
    await login(client, "a@example.org")
    refused = await client.post("/logout", headers={"HX-Request": "true"}, follow_redirects=False)
    assert refused.status_code == 403
    assert (await client.get("/me")).status_code == 200  # still logged in
    token = await csrf_token(client, "/me")
    accepted = await client.post(
        "/logout", headers={"HX-Request": "true", "x-csrftoken": token}, follow_redirects=False
    )
    assert accepted.status_code == 303
    assert (await client.get("/me", follow_redirects=False)).status_code == 302


PROFILE = {"name": "Camille", "locale": "fr", "timezone": "Europe/Paris"}


async def test_the_csrf_token_changes_at_login_and_logout(client: AsyncClient) -> None:
    await make_user("a@example.org")
    before = await csrf_token(client, "/login")
    await login(client, "a@example.org")
    during = await csrf_token(client, "/account")
    assert during != before
    # A page from before the login (another tab) cannot post any more: it must reload.
    for headers, data in (({}, {"_csrf_token": before}), ({"x-csrftoken": before}, {})):
        stale = await client.post(
            "/account/profile", data=PROFILE | data, headers=headers, follow_redirects=False
        )
        assert stale.status_code == 403
        assert "Ce formulaire a expiré" in stale.text
    fresh = await client.post(
        "/account/profile", data=PROFILE | {"_csrf_token": during}, follow_redirects=False
    )
    assert fresh.status_code == 303
    await post_form(client, "/logout", {}, from_page="/account")
    after = await csrf_token(client, "/login")
    assert after not in (before, during)
    refused = await client.post(
        "/login",
        data={"email": "a@example.org", "password": PASSWORD, "_csrf_token": during},
        follow_redirects=False,
    )
    assert refused.status_code == 403


async def test_a_csrf_token_works_only_in_its_own_session(
    client: AsyncClient, other_client: AsyncClient
) -> None:
    """Someone who can plant a cookie in the victim's browser (a sibling subdomain) plants
    their own CSRF cookie with the token that goes with it: the victim's session refuses it."""
    await make_user("victim@example.org")
    await make_user("attacker@example.org")
    await login(client, "victim@example.org")
    await login(other_client, "attacker@example.org")
    token = await csrf_token(other_client, "/account")
    client.cookies.set("csrftoken", other_client.cookies["csrftoken"], domain="127.0.0.1")
    forged = await client.post(
        "/account/profile",
        data=PROFILE | {"name": "pwned", "_csrf_token": token},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    assert (await User.objects().get(User.email == "victim@example.org")).name != "pwned"


async def test_a_form_posted_from_another_site_is_refused(
    client: AsyncClient, other_client: AsyncClient
) -> None:
    """Login CSRF: another site (a sibling subdomain that plants its CSRF cookie with the
    token that goes with it) posts the login form with its own account. The Origin (or the
    Referer without one) says where the form comes from: not from here, refused."""
    await make_user("attacker@example.org")
    token = await csrf_token(other_client)  # the attacker's own browser value and token
    client.cookies.set("csrftoken", other_client.cookies["csrftoken"], domain="127.0.0.1")
    data = {"email": "attacker@example.org", "password": PASSWORD, "_csrf_token": token}
    for headers in (
        {"Origin": "http://evil.127.0.0.1:8000"},
        {"Origin": "http://127.0.0.1:8001"},
        {"Origin": "null"},
        {"Referer": "http://sibling.example/login"},
        {"Origin": "http://sibling.example", "Referer": "http://127.0.0.1:8000/login"},
    ):
        forged = await client.post("/login", data=data, headers=headers, follow_redirects=False)
        assert forged.status_code == 403, headers
        assert "portal_session" not in forged.headers.get("set-cookie", "")
    # From the portal's own pages it goes through (and so does a client sending neither).
    for headers in ({"Origin": "http://127.0.0.1:8000"}, {"Referer": f"{BASE}/login"}, {}):
        fresh = await csrf_token(client)
        data["_csrf_token"] = fresh
        own = await client.post("/login", data=data, headers=headers, follow_redirects=False)
        assert own.status_code == 303, headers
        await post_form(client, "/logout", {}, from_page="/me")


async def test_on_https_cookies_are_host_only_so_no_sibling_can_plant_them() -> None:
    """`__Host-` cookies are Secure, for Path=/ and without Domain: a browser takes them
    only from this very host. A planted `csrftoken` is not even read."""
    await make_user("a@example.org")
    settings = replace(get_settings(), base_url="https://portal.example")
    async with running(create_app(settings), "https://portal.example") as browser:
        page = await browser.get("/login")
        [csrf_cookie] = page.headers.get_list("set-cookie")
        assert csrf_cookie.startswith("__Host-csrftoken=")
        assert _attributes(csrf_cookie) >= {"secure", "path=/", "httponly", "samesite=lax"}
        assert not any(a.startswith("domain") for a in _attributes(csrf_cookie))
        # A sibling's cookie with the plain name (and its own token) verifies nothing.
        sibling_value = "0" * 64
        browser.cookies.set("csrftoken", sibling_value, domain="portal.example")
        data = {"email": "a@example.org", "password": PASSWORD, "_csrf_token": csrf_from(page.text)}
        origin = {"Origin": "https://portal.example"}
        logged_in = await browser.post("/login", data=data, headers=origin, follow_redirects=False)
        assert logged_in.status_code == 303
        session_cookie = next(
            c for c in logged_in.headers.get_list("set-cookie") if "portal_session" in c
        )
        assert session_cookie.startswith("__Host-portal_session=")
        assert _attributes(session_cookie) >= {"secure", "path=/", "httponly"}
        assert not any(a.startswith("domain") for a in _attributes(session_cookie))
        assert (await browser.get("/me", follow_redirects=False)).status_code == 200
        # On https the portal's own origin only: not its http twin, not a sibling.
        token = await csrf_token(browser, "/account")
        for other in ("http://portal.example", "https://shop.portal.example"):
            forged = await browser.post(
                "/logout", data={"_csrf_token": token}, headers={"Origin": other}
            )
            assert forged.status_code == 403, other


def _attributes(cookie: str) -> set[str]:
    return {part.strip().lower() for part in cookie.split(";")[1:]}


async def test_every_page_form_carries_the_token(client: AsyncClient) -> None:
    await make_user("a@example.org")
    await login(client, "a@example.org")
    page = (await client.get("/account")).text
    assert page.count('name="_csrf_token"') == page.count("<form")
    assert '"x-csrftoken":' in page  # htmx sends it as a header too


async def test_unknown_host_is_refused(client: AsyncClient) -> None:
    response = await client.get("/", headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_host"


async def test_user_text_is_escaped(client: AsyncClient) -> None:
    await make_user("a@example.org", name="<script>alert(1)</script>")
    await login(client, "a@example.org")
    page = (await client.get("/me")).text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


async def test_htmx_request_without_login_redirects_the_whole_page(client: AsyncClient) -> None:
    response = await client.get("/me", headers={"HX-Request": "true"}, follow_redirects=False)
    assert response.headers["HX-Redirect"] == "/login?next=%2Fme"


async def test_addresses_behind_a_trusted_proxy() -> None:
    """Behind the TLS proxy, throttling counts the visitor's address, not the proxy's."""
    from litestar import Litestar, Request, get
    from litestar.datastructures import State
    from litestar.testing import AsyncTestClient

    from portal.routes.forms import client_ip

    @get("/ip")
    async def ip(request: Request[Any, Any, Any]) -> str:
        return client_ip(request)

    settings = replace(get_settings(), trusted_proxies=frozenset({"testclient", "10.0.0.2"}))
    app = Litestar([ip], state=State({"settings": settings}))
    async with AsyncTestClient(app) as client:
        assert (await client.get("/ip", headers={"X-Forwarded-For": "203.0.113.9"})).text == (
            "203.0.113.9"
        )
        spoofed = await client.get(
            "/ip", headers={"X-Forwarded-For": "1.1.1.1, 203.0.113.9, 10.0.0.2"}
        )
        assert spoofed.text == "203.0.113.9"
    untrusted = Litestar([ip], state=State({"settings": get_settings()}))
    async with AsyncTestClient(untrusted) as client:
        assert (await client.get("/ip", headers={"X-Forwarded-For": "203.0.113.9"})).text == (
            "testclient"
        )
