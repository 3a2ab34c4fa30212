"""Sign-up, login, logout and account pages through the HTTP stack, with real sessions in Redis."""

from __future__ import annotations

from httpx import AsyncClient

from portal.accounts.tables import Role, User
from portal.settings import get_settings
from portal.web.sessions import HOST_SESSION_KEY, SESSION_KEY
from tests.support import PASSWORD, finish_signup, login, make_expert, make_user, post_form


async def _session_keys() -> list[str]:
    from portal.redis import connect

    redis = connect(get_settings().redis_url or "")
    try:
        return [k.decode() for k in await redis.keys("portal:session*")]
    finally:
        await redis.aclose()


async def test_signup_then_its_link_logs_in_and_lands_on_the_client_space(
    client: AsyncClient,
) -> None:
    response = await post_form(
        client,
        "/signup",
        {"name": "Camille", "email": "Camille@Example.org", "password": PASSWORD},
        from_page="/signup",
    )
    assert response.status_code == 200 and "Vérifiez votre boîte mail" in response.text
    assert SESSION_KEY not in response.headers.get("set-cookie", "")
    response = await finish_signup(client, "camille@example.org", PASSWORD)
    assert response.status_code == 303
    assert response.headers["location"] == "/me"
    cookie = response.headers["set-cookie"]
    assert f"{SESSION_KEY}=" in cookie
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    page = await client.get("/me")
    assert page.status_code == 200
    assert "Bienvenue\u202f! Votre compte est prêt." in page.text
    assert "Bonjour Camille" in page.text
    user = await User.objects().get(User.email == "camille@example.org")
    assert user.locale == "fr" and user.timezone == "Europe/Paris"


async def test_signup_errors_are_shown_per_field_in_the_viewers_language(
    client: AsyncClient,
) -> None:
    await make_user("taken@example.org")
    response = await post_form(
        client, "/signup", {"email": "taken@example.org", "password": "short"}, from_page="/signup"
    )
    assert response.status_code == 422
    assert "Un compte existe déjà" not in response.text  # never said: see test_signup.py
    assert "Le mot de passe doit comporter au moins 10 caractères." in response.text
    assert 'value="taken@example.org"' in response.text  # what was typed is kept
    client.cookies.set("lang", "en")
    response = await post_form(client, "/signup", {"email": "nope"}, from_page="/signup")
    assert response.status_code == 422
    assert "Enter a valid email address." in response.text


async def test_login_failure_is_generic(client: AsyncClient) -> None:
    await make_user("a@example.org")
    for email in ("a@example.org", "unknown@example.org"):
        response = await post_form(client, "/login", {"email": email, "password": "wrong password"})
        assert response.status_code == 400
        assert "L’e-mail ou le mot de passe est incorrect." in response.text
    assert (await client.get("/me", follow_redirects=False)).status_code in (302, 303)


async def test_login_follows_next_only_on_site(client: AsyncClient) -> None:
    await make_user("a@example.org")
    redirect = await client.get("/account", follow_redirects=False)
    assert redirect.headers["location"] == "/login?next=%2Faccount"
    response = await post_form(
        client, "/login", {"email": "a@example.org", "password": PASSWORD, "next": "/account"}
    )
    assert response.headers["location"] == "/account"
    await post_form(client, "/logout", {}, from_page="/account")
    response = await post_form(
        client,
        "/login",
        {"email": "a@example.org", "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert response.headers["location"] == "/me"


async def test_a_planted_session_id_is_replaced_at_login_and_dies(
    client: AsyncClient, other_client: AsyncClient
) -> None:
    await make_user("a@example.org")
    # An attacker gets a real anonymous session (logout leaves a flash message in one)...
    await post_form(other_client, "/logout", {})
    planted = other_client.cookies.get(SESSION_KEY)
    assert planted and planted != "null"
    assert any(planted in key for key in await _session_keys())
    # ...and makes the victim's browser log in with it.
    client.cookies.set(SESSION_KEY, planted, domain="127.0.0.1")
    await login(client, "a@example.org")
    issued = client.cookies.get(SESSION_KEY)
    assert issued and issued != planted
    assert not any(planted in key for key in await _session_keys())
    assert (await client.get("/me")).status_code == 200
    # The attacker's copy of the old id is worth nothing.
    assert (await other_client.get("/me", follow_redirects=False)).status_code == 302


async def test_an_invented_session_id_is_never_adopted(client: AsyncClient) -> None:
    await make_user("a@example.org")
    client.cookies.set(SESSION_KEY, "f" * 64, domain="127.0.0.1")
    await login(client, "a@example.org")
    assert client.cookies.get(SESSION_KEY) != "f" * 64


async def test_logout_kills_the_session_server_side(
    client: AsyncClient, other_client: AsyncClient
) -> None:
    await make_user("a@example.org")
    await login(client, "a@example.org")
    stolen = client.cookies.get(SESSION_KEY)
    other_client.cookies.set(SESSION_KEY, stolen, domain="127.0.0.1")
    assert (await other_client.get("/me")).status_code == 200  # a copied cookie works...
    response = await post_form(client, "/logout", {}, from_page="/me")
    assert response.status_code == 303
    assert not any(stolen in key for key in await _session_keys())
    # ...until logout: the session is gone from the store, not only from this browser.
    assert (await other_client.get("/me", follow_redirects=False)).status_code == 302


async def test_anonymous_pages_create_no_session(client: AsyncClient) -> None:
    response = await client.get("/")
    assert SESSION_KEY not in response.headers.get("set-cookie", "")
    assert await _session_keys() == []


async def test_account_changes_language_and_time_zone(client: AsyncClient) -> None:
    await make_user("a@example.org")
    await login(client, "a@example.org")
    response = await post_form(
        client,
        "/account/profile",
        {"name": "Camille B.", "locale": "en", "timezone": "America/Toronto"},
        from_page="/account",
    )
    assert response.status_code == 303
    page = await client.get("/account")
    assert '<html lang="en"' in page.text
    assert "Your profile is saved." in page.text
    assert "Times shown in America/Toronto." in page.text
    bad = await post_form(
        client,
        "/account/profile",
        {"name": "", "locale": "de", "timezone": "Mars/Olympus"},
        from_page="/account",
    )
    assert bad.status_code == 422
    assert "Choose French or English." in bad.text
    assert "Choose a time zone from the list." in bad.text


async def test_password_change_keeps_this_browser_and_logs_out_the_others(
    client: AsyncClient, other_client: AsyncClient
) -> None:
    await make_user("a@example.org")
    other_device = other_client
    await login(other_device, "a@example.org")
    await login(client, "a@example.org")
    before = client.cookies.get(SESSION_KEY)
    wrong = await post_form(
        client,
        "/account/password",
        {"current_password": "nope", "new_password": "x", "confirm_password": "x"},
        from_page="/account",
    )
    assert wrong.status_code == 422
    assert "Le mot de passe actuel est incorrect." in wrong.text
    response = await post_form(
        client,
        "/account/password",
        {
            "current_password": PASSWORD,
            "new_password": "a brand new phrase",
            "confirm_password": "a brand new phrase",
        },
        from_page="/account",
    )
    assert response.status_code == 303
    assert client.cookies.get(SESSION_KEY) != before
    assert (await client.get("/account")).status_code == 200
    assert (await other_device.get("/me", follow_redirects=False)).status_code == 302


async def test_expert_space_is_for_experts_only(client: AsyncClient) -> None:
    assert (await client.get("/expert", follow_redirects=False)).headers["location"] == (
        "/login?next=%2Fexpert"
    )
    await make_user("client@example.org")
    await login(client, "client@example.org")
    denied = await client.get("/expert")
    assert denied.status_code == 403
    assert "Accès refusé" in denied.text
    await post_form(client, "/logout", {}, from_page="/me")
    expert = await make_expert("expert@example.org", slug="alice-expert")
    response = await login(client, "expert@example.org")
    assert response.headers["location"] == "/expert"
    page = await client.get("/expert")
    assert page.status_code == 200
    assert "Espace expert" in page.text
    assert "Votre charte n’est pas encore publiée" in page.text
    assert expert.slug == "alice-expert"


async def test_language_switch_is_remembered_and_saved_on_the_account(
    client: AsyncClient,
) -> None:
    response = await post_form(client, "/lang", {"locale": "en", "next": "/login"})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert "Log in" in (await client.get("/login")).text
    user = await make_user("a@example.org", role=Role.client, locale="fr")
    await login(client, "a@example.org")
    assert '<html lang="fr"' in (await client.get("/me")).text  # the account's choice wins
    await post_form(client, "/lang", {"locale": "en", "next": "/me"}, from_page="/me")
    assert (await User.objects().get(User.id == user.id)).locale == "en"
    assert '<html lang="en"' in (await client.get("/me")).text


async def test_cookies_are_secure_behind_https() -> None:
    from dataclasses import replace

    import httpx

    from portal.app import create_app

    settings = replace(get_settings(), base_url="https://portal.example.fr")
    app = create_app(settings)
    await make_user("a@example.org")
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=settings.base_url) as client:
            page = await client.get("/login")
            assert "Secure" in page.headers["set-cookie"]  # the CSRF cookie
            response = await post_form(
                client, "/login", {"email": "a@example.org", "password": PASSWORD}
            )
            session_cookie = next(
                c for c in response.headers.get_list("set-cookie") if c.startswith(HOST_SESSION_KEY)
            )
            assert "Secure" in session_cookie and "HttpOnly" in session_cookie
            wrong_host = await client.get("http://127.0.0.1:8000/login")
            assert wrong_host.status_code == 400


async def test_password_change_ends_sessions_the_index_forgot_and_api_tokens(
    client: AsyncClient, other_client: AsyncClient
) -> None:
    from portal.redis import connect

    await make_user("a@example.org")
    await login(other_client, "a@example.org")
    token = (
        await client.post("/api/v1/tokens", json={"email": "a@example.org", "password": PASSWORD})
    ).json()["token"]
    redis = connect(get_settings().redis_url or "")
    try:  # as if the index of the user's sessions had expired
        for key in await redis.keys("portal:user-sessions:*"):
            await redis.delete(key)
    finally:
        await redis.aclose()
    await login(client, "a@example.org")
    changed = await post_form(
        client,
        "/account/password",
        {
            "current_password": PASSWORD,
            "new_password": "a brand new phrase",
            "confirm_password": "a brand new phrase",
        },
        from_page="/account",
    )
    assert changed.status_code == 303
    assert (await client.get("/account")).status_code == 200
    assert (await other_client.get("/me", follow_redirects=False)).status_code == 302
    api = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 401


async def test_an_ended_session_is_not_written_back() -> None:
    """A request still running when its session is ended (logout elsewhere) must not bring
    it back when it finishes: write-backs only overwrite a session that still exists."""
    from portal.redis import connect
    from portal.web.sessions import PortalRedisStore

    redis = connect(get_settings().redis_url or "")
    try:
        store = PortalRedisStore(redis, namespace="portal:session")
        await store.set("alive", b"{}", expires_in=60)
        assert await store.set_existing("alive", b'{"uid": 1}', expires_in=60)
        assert await store.get("alive") == b'{"uid": 1}'
        await store.delete("alive")
        assert not await store.set_existing("alive", b'{"uid": 1}', expires_in=60)
        assert await store.get("alive") is None
    finally:
        await redis.aclose()
