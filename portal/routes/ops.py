from __future__ import annotations

from typing import Any

from litestar import Response, get

from portal.ops import health_report
from portal.web.deps import RedisDep


@get("/healthz", name="healthz", tags=["operations"], cache=False)
async def healthz(redis: RedisDep) -> Response[dict[str, Any]]:
    """The state of the database, Redis and the worker: 200 when all answer, 503 otherwise."""
    healthy, report = await health_report(redis)
    return Response(
        report, status_code=200 if healthy else 503, headers={"Cache-Control": "no-store"}
    )


ROUTES = [healthz]
