from __future__ import annotations

from httpx import AsyncClient

from portal.accounts.tables import ApiToken
from tests.support import PASSWORD, login, make_user


async def _token(client: AsyncClient, email: str = "a@example.org") -> str:
    response = await client.post("/api/v1/tokens", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return response.json()["token"]


async def test_token_for_valid_credentials(client: AsyncClient) -> None:
    user = await make_user("a@example.org")
    response = await client.post(
        "/api/v1/tokens", json={"email": "A@Example.org", "password": PASSWORD, "name": "laptop"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["token"].startswith("ptl_")
    assert body["user"]["id"] == user.id and body["user"]["email"] == "a@example.org"
    assert (await ApiToken.objects().first()).name == "laptop"  # type: ignore[union-attr]


async def test_bad_credentials_are_401_json(client: AsyncClient) -> None:
    await make_user("a@example.org")
    response = await client.post("/api/v1/tokens", json={"email": "a@example.org", "password": "x"})
    assert response.status_code == 401
    assert response.json() == {
        "code": "invalid_credentials",
        "detail": "L’e-mail ou le mot de passe est incorrect.",
    }


async def test_malformed_json_is_422_with_fields(client: AsyncClient) -> None:
    missing = await client.post("/api/v1/tokens", json={"email": "a@example.org"})
    assert missing.status_code == 422
    assert missing.json()["code"] == "validation_failed"
    assert "password" in missing.json()["errors"]
    garbage = await client.post(
        "/api/v1/tokens", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert garbage.status_code in (400, 422)
    assert garbage.json()["code"] in ("bad_request", "validation_failed")
    extra = await client.post(
        "/api/v1/tokens", json={"email": "a@example.org", "password": "x", "admin": True}
    )
    assert extra.status_code == 422


async def test_json_nested_too_deeply_is_422_not_500(client: AsyncClient) -> None:
    """A few kilobytes of `[[[[…]]]]` exhaust the decoder's recursion: a body that cannot be
    read, anonymous or not, on every JSON endpoint."""
    await make_user("a@example.org")
    headers = {"Authorization": f"Bearer {await _token(client)}"}
    deep = b"[" * 5000 + b"]" * 5000
    for method, path in (
        ("POST", "/api/v1/tokens"),
        ("POST", "/api/v1/experts/someone/bookings"),
        ("POST", "/api/v1/experts/someone/questions"),
    ):
        answer = await client.request(
            method, path, content=deep, headers={"Content-Type": "application/json", **headers}
        )
        assert answer.status_code == 422, (path, answer.status_code)
        assert answer.json()["code"] == "validation_failed"
    anonymous = await client.post(
        "/api/v1/tokens", content=deep, headers={"Content-Type": "application/json"}
    )
    assert anonymous.status_code == 422


async def test_bearer_token_authenticates_and_can_be_revoked(client: AsyncClient) -> None:
    await make_user("a@example.org", locale="en")
    token = await _token(client)
    headers = {"Authorization": f"Bearer {token}"}
    me = await client.get("/api/v1/me", headers=headers)
    assert me.status_code == 200
    assert me.json()["email"] == "a@example.org" and me.json()["locale"] == "en"
    assert (await client.delete("/api/v1/tokens/current", headers=headers)).status_code == 204
    after = await client.get("/api/v1/me", headers=headers)
    assert after.status_code == 401
    assert after.json()["code"] == "not_authenticated"


async def test_api_ignores_session_cookies(client: AsyncClient) -> None:
    """The API is exempt from CSRF because a browser's cookie never authenticates it."""
    await make_user("a@example.org")
    await login(client, "a@example.org")
    assert (await client.get("/me")).status_code == 200
    response = await client.get("/api/v1/me")
    assert response.status_code == 401
    assert (
        await client.get("/api/v1/me", headers={"Authorization": "Bearer nope"})
    ).status_code == 401


async def test_unknown_api_route_is_json_404(client: AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_openapi_describes_the_api(client: AsyncClient) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert "/api/v1/tokens" in schema["paths"]
    assert "/api/v1/me" in schema["paths"]
    assert "/healthz" in schema["paths"]
    assert "/login" not in schema["paths"]  # pages are not API
    assert schema["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    request_schema = schema["paths"]["/api/v1/tokens"]["post"]["requestBody"]
    assert request_schema["required"] is True
