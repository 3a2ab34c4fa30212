"""The application factory: plugins, middleware, routes; nothing else."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any

from litestar import Litestar, Request
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import NotFoundException
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.flash import FlashConfig, FlashPlugin
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from portal import db
from portal.booking.policy import share
from portal.booking.presentation import BOOKING_STATUS
from portal.questions.presentation import QUESTION_STATUS
from portal.redis import EmbeddedRedis, connect
from portal.routes import ROUTES
from portal.routes.api_docs import ApiDocsPage
from portal.settings import Settings, get_settings
from portal.templating import environment
from portal.web import STATIC_DIR
from portal.web.auth import AuthMiddleware, current_user
from portal.web.csrf import CSRFMiddleware
from portal.web.errors import EXCEPTION_HANDLERS
from portal.web.events import WakeConsumers
from portal.web.headers import add_security_headers
from portal.web.hosts import AllowedHostsMiddleware, allowed_hosts
from portal.web.locale import LocaleMiddleware
from portal.web.request import PortalRequest
from portal.web.sessions import (
    SESSION_MAX_AGE,
    STORE_NAME,
    PortalRedisStore,
    PortalSessionConfig,
    session_cookie_name,
)

HTMX_FILE = "js/htmx-2.0.11.min.js"
NO_SESSION_PATHS = ("^/healthz$", "^/static/", "^/favicon.ico$")


def _templates(settings: Settings) -> TemplateConfig[JinjaTemplateEngine]:
    env = environment(auto_reload=settings.debug)
    env.globals.update(
        current_user=current_user,
        htmx_file=HTMX_FILE,
        uuid=lambda: uuid.uuid4().hex,  # a key per form: posting it twice applies once
        base_url=settings.base_url,
        demo=settings.demo,
        booking_status=BOOKING_STATUS,
        share=share,  # a cancellation's or no-show's share of a price, as policy.py rounds
        question_status=QUESTION_STATUS,
    )
    engine = JinjaTemplateEngine.from_environment(env)
    engine.register_template_callable("url_for", _cached_url_for)
    return TemplateConfig(instance=engine)


@lru_cache(maxsize=4096)
def _reverse(app: Litestar, name: str, params: tuple[tuple[str, Any], ...]) -> str:
    return app.route_reverse(name, **dict(params))


def _cached_url_for(context: Mapping[str, Any], route_name: str, **params: Any) -> str:
    """Litestar's `url_for` for templates, remembered: a page asks for the same paths each
    time, and reversing a route costs more than rendering the link."""
    return _reverse(context["request"].app, route_name, tuple(sorted(params.items())))


def _static_name_ok(request: Request[Any, Any, Any]) -> None:
    """A static file's name that no file system takes (a NUL, too long) is not found, rather
    than an error of the file system."""
    name = str(request.path_params.get("file_path", "")).encode("utf-8", "surrogatepass")
    if b"\x00" in name or len(name) > 1024 or any(len(part) > 255 for part in name.split(b"/")):
        raise NotFoundException()


def _csrf(settings: Settings) -> CSRFMiddleware:
    # The API authenticates by bearer token only (never a cookie), and Stripe signs its
    # webhooks: those two need no CSRF token. Every other unsafe request does.
    return CSRFMiddleware(
        secret=settings.secret_key,
        base_url=settings.base_url,
        exclude=("^/api/v1/", "^/webhooks/stripe$", *NO_SESSION_PATHS),
    )


def _sessions(settings: Settings) -> PortalSessionConfig:
    return PortalSessionConfig(
        key=session_cookie_name(settings.is_https),
        max_age=SESSION_MAX_AGE,
        secure=settings.is_https,
        httponly=True,
        samesite="lax",
        store=STORE_NAME,
        renew_on_access=True,
        exclude=list(NO_SESSION_PATHS),
    )


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    db.get_engine()  # build the engine now, outside any event loop (Piccolo checks the version)
    embedded: EmbeddedRedis | None = None
    redis_url = settings.redis_url
    if redis_url is None:
        embedded = EmbeddedRedis(settings.var_dir)
        redis_url = embedded.start()
    redis = connect(redis_url)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await db.start_pool()
        try:
            yield
        finally:
            await db.close_pool()
            await redis.aclose()
            if embedded is not None:
                embedded.stop()

    templates = _templates(settings)
    session_config = _sessions(settings)
    return Litestar(
        route_handlers=[
            *ROUTES,
            create_static_files_router(
                path="/static",
                directories=[STATIC_DIR],
                name="static",
                include_in_schema=False,
                cache_control=None,
                before_request=_static_name_ok,
            ),
        ],
        request_class=PortalRequest,
        plugins=[HTMXPlugin(), FlashPlugin(config=FlashConfig(template_config=templates))],
        template_config=templates,
        middleware=[
            DefineMiddleware(WakeConsumers, redis=redis),
            AllowedHostsMiddleware(allowed_hosts(settings.host)),
            session_config.middleware,
            AuthMiddleware(exclude_path_pattern=NO_SESSION_PATHS),
            LocaleMiddleware(),
            _csrf(settings),  # after the session (its secret) and the locale (the 403 page)
        ],
        stores={STORE_NAME: PortalRedisStore(redis, namespace="portal:session")},
        dependencies={
            "redis": Provide(lambda: redis, use_cache=True, sync_to_thread=False),
            "settings": Provide(lambda: settings, use_cache=True, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        before_send=[add_security_headers],
        openapi_config=OpenAPIConfig(
            title="Portal API",
            version="1",
            description="Usage-based billing and booking for independent experts.",
            path="/schema",
            render_plugins=[ApiDocsPage()],  # and /schema/openapi.json
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(
                        type="http", scheme="bearer", description="POST /api/v1/tokens returns one"
                    )
                }
            ),
        ),
        lifespan=[lifespan],
        state=State({"settings": settings}),
        debug=settings.debug,
    )
