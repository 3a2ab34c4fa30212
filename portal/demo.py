"""Demo data for local runs: an expert with a published charter and three packs, and a
client. Each part is created once (idempotent)."""

from __future__ import annotations

from dataclasses import dataclass

from portal.accounts.services import expert_create, user_by_email, user_create
from portal.accounts.tables import Expert
from portal.charter.rules import Interval, Rules
from portal.charter.services import (
    charter_publish,
    draft_save,
    pack_create,
    packs_for,
    version_current,
)


@dataclass(frozen=True)
class DemoLogin:
    role: str
    email: str
    password: str


EXPERT = DemoLogin("expert", "expert@example.com", "demo-expert-2026")
CLIENT = DemoLogin("client", "client@example.com", "demo-client-2026")
EXPERT_SLUG = "claire-martin"
EXPERT_NAME = "Claire Martin"

_DAY = [Interval("09:00", "12:30"), Interval("14:00", "18:00")]

DEMO_RULES = Rules(
    call_prices={15: 1, 30: 2, 45: 3},
    video_prices={30: 2, 45: 3},
    answer_price=1,
    included_messages=2,
    included_window_days=7,
    urgent_enabled=True,
    urgent_deadline_minutes=60,
    urgent_premium=1,
    timezone="Europe/Paris",
    working_hours={
        "mon": _DAY,
        "tue": _DAY,
        "wed": [Interval("09:00", "12:30")],
        "thu": _DAY,
        "fri": [Interval("09:00", "12:30"), Interval("14:00", "17:00")],
    },
    off_hours_urgent=True,
    cancel_free_hours=24,
    cancel_late_forfeit_percent=50,
    no_show_client_percent=100,
    min_notice_hours=12,
    horizon_days=60,
    buffer_minutes=10,
    daily_cap=6,
    credit_validity_months=12,
    intro=(
        "Avocate en droit des affaires à Lyon, j'accompagne dirigeants de TPE et "
        "indépendants : contrats commerciaux, création et cession de société, litiges avec "
        "un client ou un fournisseur. Un appel de 15 minutes suffit souvent à débloquer une "
        "décision."
    ),
    coordination_examples=(
        "Fixer ou déplacer un rendez-vous, confirmer la réception d'un document, "
        "vous indiquer quelles pièces préparer."
    ),
    expertise_examples=(
        "Analyser une clause de contrat, vous dire si une rupture est abusive, "
        "comparer SAS et SARL pour votre projet, relire un courrier de mise en demeure."
    ),
)

DEMO_PACKS = [("Découverte", 3, 135_00), ("Essentiel", 10, 420_00), ("Sérénité", 25, 950_00)]


async def seed() -> list[DemoLogin]:
    if await user_by_email(EXPERT.email) is None:
        await expert_create(
            email=EXPERT.email, password=EXPERT.password, slug=EXPERT_SLUG, name=EXPERT_NAME
        )
        await Expert.update(
            {
                Expert.headline: "Avocate en droit des affaires — contrats, sociétés, litiges",
                Expert.bio: "Inscrite au barreau de Lyon depuis 2012.",
            }
        ).where(Expert.slug == EXPERT_SLUG)
    expert = await Expert.objects().get(Expert.slug == EXPERT_SLUG)
    if expert is None:  # the address is another account's
        raise RuntimeError(f"{EXPERT.email} is not the demo expert {EXPERT_SLUG}")
    if await version_current(expert=expert) is None:
        await draft_save(expert=expert, rules=DEMO_RULES)
        await charter_publish(expert=expert)
    if not await packs_for(expert=expert, active_only=False):
        for name, credits, price_minor in DEMO_PACKS:
            await pack_create(expert=expert, name=name, credits=credits, price_minor=price_minor)
    if await user_by_email(CLIENT.email) is None:
        await user_create(email=CLIENT.email, password=CLIENT.password, name="Julien Bernard")
    return [EXPERT, CLIENT]
