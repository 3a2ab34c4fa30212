from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from httpx import AsyncClient
from piccolo.conf.apps import Finder

import piccolo_conf
from portal.app import create_app
from portal.db import PortalSQLiteEngine, engine_from_url, is_postgres
from portal.redis import connect
from portal.settings import get_settings
from tests.integration.conftest import running
from tests.support import csrf_from, login, make_user
from workers.settings import heartbeat


async def test_unknown_page_is_a_404_page_in_both_languages(client: AsyncClient) -> None:
    response = await client.get("/no/such/page")
    assert response.status_code == 404
    assert "Page introuvable" in response.text
    english = await client.get("/no/such/page", headers={"Accept-Language": "en"})
    assert "Page not found" in english.text
    assert "Traceback" not in response.text


async def test_malformed_form_body_is_422_not_500(client: AsyncClient) -> None:
    token = csrf_from((await client.get("/login")).text)
    response = await client.post(
        "/login",
        content=b"\xff\xfe%%%",
        headers={"Content-Type": "application/x-www-form-urlencoded", "x-csrftoken": token},
    )
    assert response.status_code in (400, 422)
    assert "Traceback" not in response.text


async def test_healthz_needs_a_worker_heartbeat(client: AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"]["ok"] is True and body["redis"]["ok"] is True
    assert body["worker"]["ok"] is False and body["worker"]["last_heartbeat"] is None

    redis = connect(get_settings().redis_url or "")
    try:
        await heartbeat({"redis": redis})  # the worker's own cron job, on the real Redis
    finally:
        await redis.aclose()
    response = await client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["worker"]["ok"] is True and body["worker"]["age_seconds"] < 5
    assert body["database"]["engine"] == ("postgres" if is_postgres() else "sqlite")


async def test_redis_outage_is_a_503_not_a_stack_trace() -> None:
    settings = get_settings()
    from dataclasses import replace

    broken = create_app(replace(settings, redis_url="redis://127.0.0.1:1/0"))
    async with running(broken) as client:
        health = await client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["redis"]["ok"] is False
        await make_user("a@example.org")
        response = await client.post(
            "/api/v1/tokens", json={"email": "a@example.org", "password": "whatever"}
        )
        assert response.status_code == 503
        assert response.json()["code"] == "unavailable"


@contextmanager
def database_down() -> Iterator[None]:
    """Point every table at a database that does not answer, then put things back."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Piccolo warns that it cannot read the server version
        if is_postgres():
            broken = engine_from_url("postgresql://postgres@127.0.0.1:1/test")
        else:
            broken = PortalSQLiteEngine(path="/nonexistent/folder/portal.sqlite")
    tables = Finder().get_table_classes()
    saved = piccolo_conf.DB
    piccolo_conf.DB = broken
    for table in tables:
        table._meta.db = broken
    try:
        yield
    finally:
        piccolo_conf.DB = saved
        for table in tables:
            table._meta.db = saved


async def test_database_outage_is_a_503_page(client: AsyncClient) -> None:
    await make_user("a@example.org")
    await login(client, "a@example.org")
    with database_down():
        health = await client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["database"]["ok"] is False
        page = await client.get("/me")
        assert page.status_code == 503
        assert "Service momentanément indisponible" in page.text
        assert "Traceback" not in page.text
        api = await client.get("/api/v1/me", headers={"Authorization": "Bearer ptl_x"})
        assert api.status_code == 503
        assert api.json()["code"] == "unavailable"
    assert (await client.get("/me")).status_code == 200
