"""The public charter pages."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath

from portal.charter import rules as charter_rules
from portal.charter.services import (
    Published,
    expert_by_slug,
    packs_for,
    version_current,
    version_get,
)
from portal.charter.tables import CreditPack
from portal.errors import NotFound
from portal.web.render import render


def money_table(rules: charter_rules.Rules, packs: list[CreditPack]) -> dict[int, tuple[int, int]]:
    """Credits -> value range in minor units, for every amount of credits the charter shows."""
    pairs = [(p.credits, p.price_minor) for p in packs]
    amounts = {rules.answer_price, rules.urgent_premium}
    amounts |= set(rules.call_prices.values()) | set(rules.video_prices.values())
    table = {}
    for credits in amounts:
        value = charter_rules.money_range(credits, pairs)
        if value is not None:
            table[credits] = value
    return table


async def _page(request: Request[Any, Any, Any], slug: str, number: int | None) -> Response[Any]:
    expert = await expert_by_slug(slug)
    latest = await version_current(expert=expert)
    if latest is None:
        raise NotFound()  # nothing public before the first publication
    version: Published = (
        latest if number is None else await version_get(expert=expert, number=number)
    )
    packs = await packs_for(expert=expert)
    return render(
        request,
        "pages/charter/public.html",
        expert=expert,
        version=version,
        latest_number=latest.number,
        packs=packs,
        money=money_table(version.rules, packs),
    )


@get("/e/{slug:str}", name="expert_public", include_in_schema=False)
async def expert_public(request: Request[Any, Any, Any], slug: FromPath[str]) -> Response[Any]:
    return await _page(request, slug, None)


@get("/e/{slug:str}/versions/{number:int}", name="expert_public_version", include_in_schema=False)
async def expert_public_version(
    request: Request[Any, Any, Any], slug: FromPath[str], number: FromPath[int]
) -> Response[Any]:
    return await _page(request, slug, number)


ROUTES = [expert_public, expert_public_version]
