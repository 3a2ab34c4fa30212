"""Security headers on every response, and pages that need no inline code: the
Content-Security-Policy allows only the portal's own scripts and styles."""

from __future__ import annotations

import re

from httpx import AsyncClient, Response

from portal.web import TEMPLATES_DIR
from tests.support import csrf_token, login, make_published_expert, make_user

EXPECTED = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def _directives(response: Response) -> dict[str, str]:
    policy = response.headers.get("content-security-policy", "")
    return {
        name: value.strip()
        for name, _, value in (part.strip().partition(" ") for part in policy.split(";"))
        if name
    }


def _assert_protected(response: Response) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (response.request.url, name)
    csp = _directives(response)
    assert csp.get("default-src") == "'self'", response.request.url
    assert csp.get("script-src") == "'self'"
    assert csp.get("style-src") == "'self'"
    assert csp.get("frame-ancestors") == "'none'"
    assert csp.get("object-src") == "'none'"
    assert "unsafe" not in response.headers["content-security-policy"]


async def test_every_kind_of_response_carries_the_security_headers(client: AsyncClient) -> None:
    await make_published_expert()
    await make_user("c@example.org")
    responses = [
        await client.get("/"),
        await client.get("/e/alice-expert"),
        await client.get("/e/alice-expert/book", headers={"HX-Request": "true"}),
        await client.get("/no/such/page"),  # a 404 page, answered before any route
        await client.get("/static/css/app.css"),
        await client.get("/static/js/htmx-2.0.11.min.js"),
        await client.get("/healthz"),
        await client.get("/api/v1/experts/alice-expert"),
        await client.get("/api/v1/me"),  # 401 in JSON
        await client.get("/schema"),
        await client.get("/schema/openapi.json"),
        await client.post("/login", data={"email": "x"}),  # no CSRF token: the 403 page
    ]
    assert [r.status_code for r in responses] == [
        200, 200, 200, 404, 200, 200, 503, 200, 401, 200, 200, 403,
    ]  # fmt: skip
    for response in responses:
        _assert_protected(response)
    await login(client, "c@example.org")
    _assert_protected(await client.get("/me"))


INLINE_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<style\b|\sstyle\s*=", re.IGNORECASE)


def test_no_template_has_inline_scripts_handlers_or_styles() -> None:
    offenders = []
    for path in sorted(TEMPLATES_DIR.rglob("*.html")):
        if "emails" in path.parts:
            continue  # emails are read in mail clients, not under the site's policy
        text = path.read_text(encoding="utf-8")
        for pattern in (INLINE_HANDLER, INLINE_SCRIPT, INLINE_STYLE):
            offenders += [f"{path.name}: {m.group(0)[:60]}" for m in pattern.finditer(text)]
    assert offenders == []


async def test_htmx_is_configured_for_the_policy(client: AsyncClient) -> None:
    page = (await client.get("/")).text
    config = re.search(r"<meta name=\"htmx-config\" content='([^']+)'>", page)
    assert config is not None
    import json

    values = json.loads(config.group(1))
    # No <style> injected for indicators, no eval, no inline scripts run from responses.
    assert values["includeIndicatorStyles"] is False
    assert values["allowEval"] is False
    assert values["allowScriptTags"] is False
    scripts = re.findall(r"<script[^>]*src=\"([^\"]+)\"", page)
    assert scripts and all(src.startswith("/static/js/") for src in scripts)


async def test_the_api_documentation_loads_nothing_from_elsewhere(client: AsyncClient) -> None:
    await make_published_expert()
    page = await client.get("/schema")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/schema/openapi.json" in page.text
    assert "/api/v1/tokens" in page.text and "/api/v1/experts/{slug}/bookings" in page.text
    external = re.findall(r"(?:src|href)=\"(https?:)?//[^\"]+\"", page.text)
    assert external == []
    for other in ("/schema/swagger", "/schema/redoc", "/schema/elements", "/schema/rapidoc"):
        assert (await client.get(other)).status_code == 404
    document = await client.get("/schema/openapi.json")
    assert document.status_code == 200 and document.json()["info"]["title"] == "Portal API"
    # Reading the documentation needs no token; posting is refused without a CSRF token.
    await csrf_token(client)
