"""JSON API under /api/v1, authenticated by bearer tokens (see portal.web.auth)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, delete, get, post
from litestar.exceptions import NotAuthorizedException
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from portal.accounts.login import login_attempt
from portal.accounts.services import (
    token_create,
    token_revoke,
)
from portal.accounts.tables import User
from portal.routes import api_booking, api_charter, api_credits, api_questions
from portal.routes.api_charter import ErrorOut
from portal.routes.forms import client_ip
from portal.web.auth import current_user, login_required
from portal.web.deps import RedisDep


class TokenRequest(msgspec.Struct, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    name: Annotated[str, msgspec.Meta(max_length=80)] = ""
    # The code emailed when the account is protected after many failed attempts.
    code: Annotated[str, msgspec.Meta(max_length=32)] = ""


class UserOut(msgspec.Struct):
    id: int
    email: str
    name: str
    role: str
    locale: str
    timezone: str
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            email=user.email,
            name=user.name,
            role=user.role,
            locale=user.locale,
            timezone=user.timezone,
            created_at=user.created_at,
        )


class TokenOut(msgspec.Struct):
    token: str
    token_type: str
    user: UserOut


@post(
    "/tokens",
    tags=["accounts"],
    name="api_token_create",
    status_code=HTTP_201_CREATED,
    responses={
        401: ResponseSpec(ErrorOut, description="Wrong email or password"),
        422: ResponseSpec(ErrorOut, description="Malformed request"),
        429: ResponseSpec(
            ErrorOut,
            description="Too many failed attempts (`throttled`), see Retry-After; or the "
            "account is protected and a code was emailed to it (`code_required`): send it "
            "as `code`",
        ),
    },
)
async def token_create_handler(
    request: Request[Any, Any, Any], data: JSONBody[TokenRequest], redis: RedisDep
) -> Response[Any]:
    """Exchange an email and password for a bearer token (send it as `Authorization: Bearer …`)."""
    user = await login_attempt(
        redis=redis, email=data.email, password=data.password, ip=client_ip(request), code=data.code
    )
    token = await token_create(user=user, name=data.name)
    return Response(
        TokenOut(token=token, token_type="bearer", user=UserOut.of(user)),  # noqa: S106
        status_code=HTTP_201_CREATED,
    )


@delete(
    "/tokens/current",
    tags=["accounts"],
    name="api_token_revoke",
    guards=[login_required],
    status_code=HTTP_204_NO_CONTENT,
)
async def token_revoke_handler(request: Request[Any, Any, Any]) -> None:
    """Revoke the token this request is made with."""
    _scheme, _sep, token = request.headers.get("authorization", "").partition(" ")
    if not await token_revoke(token.strip()):
        raise NotAuthorizedException("invalid_token")


@get("/me", name="api_me", guards=[login_required], tags=["accounts"])
async def me(request: Request[Any, Any, Any]) -> UserOut:
    """The account the token belongs to."""
    user = current_user(request)
    assert user is not None
    return UserOut.of(user)


# What anyone may read, without a token (the OpenAPI document says so).
public_router = Router(
    path="/api/v1",
    route_handlers=[
        token_create_handler,
        *api_charter.PUBLIC_HANDLERS,
        *api_booking.PUBLIC_HANDLERS,
    ],
)

router = Router(
    path="/api/v1",
    route_handlers=[
        token_revoke_handler,
        me,
        *api_charter.HANDLERS,
        *api_credits.HANDLERS,
        *api_booking.HANDLERS,
        *api_questions.HANDLERS,
    ],
    security=[{"BearerToken": []}],
)
