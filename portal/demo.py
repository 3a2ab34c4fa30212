"""Demo data for local runs: an expert and a client, created once (idempotent)."""

from __future__ import annotations

from dataclasses import dataclass

from portal.accounts.services import expert_create, user_by_email, user_create


@dataclass(frozen=True)
class DemoLogin:
    role: str
    email: str
    password: str


EXPERT = DemoLogin("expert", "expert@example.com", "demo-expert-2026")
CLIENT = DemoLogin("client", "client@example.com", "demo-client-2026")
EXPERT_SLUG = "claire-martin"
EXPERT_NAME = "Claire Martin"


async def seed() -> list[DemoLogin]:
    if await user_by_email(EXPERT.email) is None:
        await expert_create(
            email=EXPERT.email, password=EXPERT.password, slug=EXPERT_SLUG, name=EXPERT_NAME
        )
    if await user_by_email(CLIENT.email) is None:
        await user_create(email=CLIENT.email, password=CLIENT.password, name="Julien Bernard")
    return [EXPERT, CLIENT]
