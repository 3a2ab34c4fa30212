"""Reads of accounts that pages and the API need."""

from __future__ import annotations

from collections.abc import Iterable

from portal.accounts.tables import Expert, User
from portal.errors import NotFound


async def user_get(*, user_id: int) -> User:
    """The account a row refers to, active or not."""
    user = await User.objects().get(User.id == user_id)
    if user is None:
        raise NotFound()
    return user


async def expert_get(*, expert_id: int) -> Expert:
    """The expert a row refers to."""
    expert = await Expert.objects().get(Expert.id == expert_id)
    if expert is None:
        raise NotFound()
    return expert


async def expert_slugs(*, expert_ids: Iterable[int]) -> dict[int, str]:
    """Expert id -> slug, for these experts."""
    ids = list(set(expert_ids))
    if not ids:
        return {}
    rows = await Expert.select(Expert.id, Expert.slug).where(Expert.id.is_in(ids))
    return {row["id"]: row["slug"] for row in rows}
