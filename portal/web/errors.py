"""One mapping from errors to answers: a JSON body on the API, a page (or fragment) elsewhere.

Never a stack trace: an outage of the database or Redis is a 503 that says so, anything
unexpected a 500 page, logged with its traceback.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from asyncpg.exceptions import DataError as PostgresDataError
from asyncpg.exceptions import PostgresConnectionError, TooManyConnectionsError
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.plugins.htmx import ClientRedirect, HTMXRequest
from litestar.response import Redirect, Template
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_403_FORBIDDEN,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from portal.accounts.login import CodeRequired, LoginRefused
from portal.accounts.throttle import Throttled
from portal.credits.checkout import PaymentsUnavailable
from portal.credits.ledger import InsufficientCredits
from portal.errors import N_, Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from portal.i18n import gettext as _
from portal.i18n import ngettext
from portal.web.auth import is_api
from portal.web.locale import activate_for
from portal.web.redirects import safe_next

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Answer:
    """How a kind of domain error is answered over HTTP."""

    status: int
    api_status: int | None = None  # on the JSON API, where it differs from a page's
    extras: tuple[str, ...] = ()  # attributes of the error that its JSON body carries too
    retry_after: bool = False  # its `retry_after` seconds go in a Retry-After header
    says_wait: bool = False  # and its message says how long to wait


# Every domain error's answer, in one place. A class answers for its subclasses that are
# not listed; an error raised with a code of its own (`Conflict(..., code="too_late")`) is
# answered as its class.
ANSWERS: dict[type[DomainError], Answer] = {
    DomainError: Answer(400),
    ValidationFailed: Answer(422),  # with `errors`: a message per field
    NotFound: Answer(404),
    Forbidden: Answer(403),
    Conflict: Answer(409),
    InsufficientCredits: Answer(402, extras=("missing",)),  # how many more are needed
    Throttled: Answer(429, retry_after=True, says_wait=True),
    CodeRequired: Answer(429, retry_after=True),  # a code was emailed to the account
    LoginRefused: Answer(400, api_status=401),
    PaymentsUnavailable: Answer(503),
}


def answer_of(exc: DomainError) -> Answer:
    return next(ANSWERS[kind] for kind in type(exc).__mro__ if kind in ANSWERS)


OUTAGES: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    PostgresConnectionError,
    TooManyConnectionsError,
    ConnectionError,
    sqlite3.OperationalError,
)

HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "validation_failed",
    429: "throttled",
    500: "server_error",
    503: "unavailable",
}


def _json(status: int, code: str, detail: str, **extra: Any) -> Response[Any]:
    return Response(
        {"code": code, "detail": detail, **extra}, status_code=status, media_type=MediaType.JSON
    )


def _page(request: Request[Any, Any, Any], status: int, kind: str, **context: Any) -> Response[Any]:
    return Template(
        "errors/error.html",
        context={"status": status, "kind": kind, **context},
        status_code=status,
        headers={"Vary": "HX-Request"},
    )


_FIELD_IN_MESSAGE = re.compile(r"field `([^`]+)`|at `\$\.([A-Za-z_][\w]*)")


def _field_errors(exc: ValidationException) -> dict[str, str]:
    """Field name -> message, from Litestar's (msgspec's) validation details."""
    errors: dict[str, str] = {}
    for item in exc.extra or []:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "invalid"))
        key = str(item.get("key") or "body")
        if key == "data" and (match := _FIELD_IN_MESSAGE.search(message)):
            key = match.group(1) or match.group(2)
        errors[key] = message
    return errors


# What to say when an error carries no sentence of its own (per status).
GENERIC = {
    400: N_("The request is not valid."),
    401: N_("Authentication required: send a valid bearer token."),
    403: N_("Your account does not give access to this resource."),
    404: N_("Not found."),
    405: N_("This method is not allowed here."),
    409: N_("This conflicts with the current state."),
    422: N_("Some fields are not valid."),
    429: N_("Too many requests. Please wait a little."),
}


def _message(exc: DomainError, status: int) -> str:
    if exc.message == exc.code:  # raised without a sentence
        return _(GENERIC.get(status, N_("The request could not be completed.")))
    return _(exc.message)


def try_again_in(retry_after: int) -> str:
    """How long to wait, in seconds under a minute, else in minutes (rounded up)."""
    if retry_after < 60:
        return ngettext(
            "Try again in %(num)d second.", "Try again in %(num)d seconds.", retry_after
        ) % {"num": retry_after}
    minutes = -(-retry_after // 60)
    return ngettext("Try again in %(num)d minute.", "Try again in %(num)d minutes.", minutes) % {
        "num": minutes
    }


@dataclass(frozen=True, slots=True)
class Refusal:
    """A domain error as its answer says it, in the viewer's language: what the error page
    and the JSON body show, and what a form shown again with it shows."""

    status: int
    message: str
    errors: dict[str, str]  # a message per field (ValidationFailed), else empty
    extras: dict[str, Any]  # the answer's extras, by name
    headers: dict[str, str]
    problem: str | None  # the message, unless the fields say what is wrong


def refusal(exc: DomainError, *, api: bool = False) -> Refusal:
    """How `exc` is answered: on the JSON API (`api`) or on a page."""
    answer = answer_of(exc)
    status = answer.api_status if api and answer.api_status else answer.status
    message = _message(exc, status)
    headers: dict[str, str] = {}
    if answer.retry_after:
        wait: int = getattr(exc, "retry_after")  # noqa: B009
        headers["Retry-After"] = str(wait)
        if answer.says_wait:
            message = f"{message} {try_again_in(wait)}"
    errors = exc.errors if isinstance(exc, ValidationFailed) else {}
    return Refusal(
        status=status,
        message=message,
        errors={name: _(text) for name, text in errors.items()},
        extras={name: getattr(exc, name) for name in answer.extras},
        headers=headers,
        problem=None if isinstance(exc, ValidationFailed) else message,
    )


def handle_domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    activate_for(request)
    api = is_api(request.scope)
    said = refusal(exc, api=api)
    if api:
        errors = {"errors": said.errors} if isinstance(exc, ValidationFailed) else {}
        response = _json(said.status, exc.code, said.message, **errors, **said.extras)
    else:
        details = list(said.errors.values())
        response = _page(request, said.status, "domain", message=said.message, details=details)
    response.headers.update(said.headers)
    return response


def handle_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    activate_for(request)
    status = exc.status_code
    if isinstance(exc, ValidationException):
        status = HTTP_422_UNPROCESSABLE_ENTITY
    api = is_api(request.scope)
    if isinstance(exc, NotAuthorizedException) and not api:
        next_path = request.url.path
        if request.url.query:
            next_path += "?" + request.url.query
        login = request.app.route_reverse("login") + "?" + urlencode({"next": next_path})
        htmx = request.htmx if isinstance(request, HTMXRequest) else None
        if htmx and not htmx.history_restore_request:
            return ClientRedirect(login)  # a whole page, not a login form inside a fragment
        return Redirect(login)
    if api:
        if isinstance(exc, ValidationException) or status == HTTP_400_BAD_REQUEST:
            # Malformed JSON, wrong types, missing fields: the body is not acceptable.
            return _json(
                HTTP_422_UNPROCESSABLE_ENTITY,
                "validation_failed",
                _("The request is not valid."),
                errors=_field_errors(exc) if isinstance(exc, ValidationException) else {},
            )
        code = HTTP_CODES.get(status, "error")
        detail = GENERIC.get(status, N_("The request could not be completed."))
        response = _json(status, code, _(detail))
        response.headers.update(exc.headers or {})
        return response
    if (
        status == HTTP_403_FORBIDDEN
        and isinstance(exc, PermissionDeniedException)
        and ("csrf" in str(exc.detail).lower())
    ):
        referer = urlsplit(request.headers.get("referer", ""))
        same_site = referer.netloc == request.url.netloc
        retry = safe_next(referer.path + ("?" + referer.query if referer.query else ""), "/")
        return _page(request, status, "csrf", retry=retry if same_site else "/")
    if isinstance(exc, ValidationException):
        return _page(request, status, "invalid", errors=_field_errors(exc))
    response = _page(request, status, "http", retry_after=(exc.headers or {}).get("Retry-After"))
    response.headers.update(exc.headers or {})
    return response


def handle_outage(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("service unavailable: %s: %s", type(exc).__name__, exc)
    activate_for(request)
    if is_api(request.scope):
        return _json(
            HTTP_503_SERVICE_UNAVAILABLE,
            "unavailable",
            _("The service is temporarily unavailable. Please try again shortly."),
        )
    return _page(request, HTTP_503_SERVICE_UNAVAILABLE, "outage")


def handle_server_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, OUTAGES):
        return handle_outage(request, exc)
    if isinstance(exc, PostgresDataError):  # text PostgreSQL refuses, e.g. a NUL character
        return handle_domain_error(request, ValidationFailed({"body": N_("Invalid characters.")}))
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    activate_for(request)
    if is_api(request.scope):
        return _json(HTTP_500_INTERNAL_SERVER_ERROR, "server_error", _("Server error."))
    return _page(request, HTTP_500_INTERNAL_SERVER_ERROR, "server")


EXCEPTION_HANDLERS = {
    DomainError: handle_domain_error,
    HTTPException: handle_http_error,
    Exception: handle_server_error,
}
