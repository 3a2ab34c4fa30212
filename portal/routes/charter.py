"""The public charter pages.

The heavy part of a charter page (the rules and the packs, rendered) is cached under
(expert, version, current or not, packs revision, language): one query per page on a hit. The
expert is named by id and creation time, since SQLite may give a deleted row's id again.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath

from portal import i18n
from portal.charter import rules as charter_rules
from portal.charter.services import PublicExpert, packs_for, public_expert, version_get
from portal.charter.tables import CreditPack
from portal.errors import NotFound
from portal.params import PathId
from portal.web.fragments import FragmentCache, render_fragment
from portal.web.render import render

_packs = FragmentCache()
_bodies = FragmentCache()


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


async def _packs_on_sale(expert: PublicExpert) -> list[CreditPack]:
    key = (expert.id, expert.created_at, expert.packs_rev)
    packs = _packs.get(key)
    return packs if packs is not None else _packs.put(key, await packs_for(expert=expert))


async def _body(request: Request[Any, Any, Any], expert: PublicExpert, number: int) -> Any:
    current = number == expert.charter_version
    # Everything the fragment depends on: which version, whether it is the current one
    # (only then are packs shown), the packs, the language. (Dates in it are in the
    # charter's own time zone, not the viewer's.)
    key = (expert.id, expert.created_at, number, current, expert.packs_rev, i18n.current_locale())
    body = _bodies.get(key)
    if body is None:
        version = await version_get(expert=expert, number=number)
        packs = await _packs_on_sale(expert)
        body = _bodies.put(
            key,
            render_fragment(
                request,
                "partials/_charter_body.html",
                version=version,
                current=current,
                packs=packs if current else [],
                expert_slug=expert.slug,
                money=money_table(version.rules, packs),
            ),
        )
    return body


async def _page(request: Request[Any, Any, Any], slug: str, number: int | None) -> Response[Any]:
    expert = await public_expert(slug)
    if expert.charter_version == 0:
        raise NotFound()  # nothing is public before the first publication
    number = expert.charter_version if number is None else number
    if not 1 <= number <= expert.charter_version:
        raise NotFound()
    return render(
        request,
        "pages/charter/public.html",
        expert=expert,
        number=number,
        body=await _body(request, expert, number),
    )


@get("/e/{slug:str}", name="expert_public", include_in_schema=False)
async def expert_public(request: Request[Any, Any, Any], slug: FromPath[str]) -> Response[Any]:
    return await _page(request, slug, None)


@get("/e/{slug:str}/versions/{number:int}", name="expert_public_version", include_in_schema=False)
async def expert_public_version(
    request: Request[Any, Any, Any], slug: FromPath[str], number: PathId
) -> Response[Any]:
    return await _page(request, slug, number)


ROUTES = [expert_public, expert_public_version]
