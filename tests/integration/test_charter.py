"""Charters and packs through the services, the pages and the API, on a real database."""

from __future__ import annotations

import asyncio
import re

import msgspec
import pytest
from httpx import AsyncClient

from portal.accounts.tables import Expert, User
from portal.charter.rules import Rules
from portal.charter.services import (
    charter_publish,
    draft_get,
    draft_save,
    pack_create,
    pack_set_active,
    version_current,
)
from portal.charter.tables import CharterVersion, CreditPack
from portal.errors import Conflict, NotFound, ValidationFailed
from tests.support import PASSWORD, login, make_expert, make_published_expert, make_user, post_form


async def expert_of(email: str) -> Expert:
    user = await User.objects().get(User.email == email)
    return await Expert.objects().get(Expert.user == user.id)


# --- services ---------------------------------------------------------------------------


async def test_publishing_freezes_versions_and_refuses_an_unchanged_draft() -> None:
    expert = await make_expert()
    assert await version_current(expert=expert) is None
    assert await draft_get(expert=expert) == Rules()
    first = await charter_publish(expert=expert)
    assert first.number == 1
    with pytest.raises(Conflict) as caught:
        await charter_publish(expert=expert)
    assert caught.value.code == "nothing_to_publish"
    await draft_save(expert=expert, rules=msgspec.structs.replace(Rules(), answer_price=2))
    second = await charter_publish(expert=expert)
    assert second.number == 2
    assert (await version_current(expert=expert)).rules.answer_price == 2  # type: ignore[union-attr]
    assert (await CharterVersion.objects().where(CharterVersion.number == 1).first()).rules  # type: ignore[union-attr]


async def test_invalid_drafts_are_never_kept_nor_published() -> None:
    expert = await make_expert()
    with pytest.raises(ValidationFailed) as caught:
        await draft_save(expert=expert, rules=Rules(call_prices={20: 1}, video_prices={}))
    assert caught.value.errors == {"call_prices": "Durations are 15, 30 or 45 minutes."}
    assert await draft_get(expert=expert) == Rules()


async def test_the_database_refuses_to_change_a_published_version() -> None:
    expert = await make_expert()
    await charter_publish(expert=expert)
    with pytest.raises(Exception, match="immutable"):
        await CharterVersion.update({CharterVersion.rules: "{}"}).where(
            CharterVersion.expert == expert.id
        )
    with pytest.raises(Exception, match="immutable"):
        await CharterVersion.update({CharterVersion.number: 7}).where(
            CharterVersion.expert == expert.id
        )
    stored = await CharterVersion.objects().first()
    assert stored is not None and stored.number == 1 and stored.rules != "{}"


async def test_concurrent_publications_make_one_version() -> None:
    expert = await make_expert()
    results = await asyncio.gather(
        *(charter_publish(expert=expert) for _ in range(6)), return_exceptions=True
    )
    published = [r for r in results if not isinstance(r, BaseException)]
    assert len(published) == 1 and published[0].number == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, BaseException))
    assert await CharterVersion.count() == 1


async def test_packs_are_validated_and_only_their_expert_archives_them() -> None:
    alice = await make_expert()
    bob = await make_expert("bob@example.org", slug="bob")
    with pytest.raises(ValidationFailed) as caught:
        await pack_create(expert=alice, name="", credits=0, price_minor=-5)
    assert set(caught.value.errors) == {"name", "credits", "price"}
    pack = await pack_create(expert=alice, name="Essentiel", credits=10, price_minor=420_00)
    with pytest.raises(NotFound):
        await pack_set_active(expert=bob, pack_id=pack.id, active=False)
    archived = await pack_set_active(expert=alice, pack_id=pack.id, active=False)
    assert archived.active is False
    with pytest.raises(Exception):  # noqa: B017 (the database's own check)
        await CreditPack.update({CreditPack.credits: 0}).where(CreditPack.id == pack.id)


# --- public pages -----------------------------------------------------------------------


async def test_an_unpublished_expert_has_no_public_page(client: AsyncClient) -> None:
    await make_expert()
    assert (await client.get("/e/alice-expert")).status_code == 404
    assert (await client.get("/e/nobody")).status_code == 404
    assert (await client.get("/api/v1/experts/alice-expert")).status_code == 404


async def test_public_charter_in_french(client: AsyncClient) -> None:
    await make_published_expert(packs=(("Essentiel", 10, 400_00), ("Découverte", 3, 135_00)))
    page = await client.get("/e/alice-expert")
    assert page.status_code == 200
    text = page.text
    assert "<title>Alice Expert — charte et prix · Portail</title>" in text
    assert 'name="description" content="Prix et règles de Alice Expert' in text
    assert "Charte des échanges, version 1, publiée le" in text
    assert "2 crédits" in text and "dès 80\u00a0€" in text  # 2 credits at 40 € or 45 €
    assert "au prix par crédit du pack le plus avantageux" in text  # what "dès" means
    assert "Horaires pour les questions écrites" in text  # not the bookable times
    assert "ceux que propose la page de réservation" in text
    assert "Une réponse de conseil est facturée" in text
    assert "Chaque appel réservé inclut 2 questions de suivi dans les 7 jours." in text
    assert "sous 1\u00a0h de temps ouvré" in text
    assert "Annulation gratuite jusqu’à 24 heures avant le début." in text
    assert "Annulation après ce délai\u202f: 100\u00a0% des crédits sont perdus." in text
    assert "Absence ou annulation de l’expert\u202f: tous les crédits sont libérés." in text
    assert "Les crédits restent valables 12 mois après l’achat" in text
    assert "Découverte" in text and "135,00\u00a0€" in text
    assert "Samedi" in text and "fermé" in text


async def test_public_charter_in_english(client: AsyncClient) -> None:
    await make_published_expert()
    text = (await client.get("/e/alice-expert", headers={"Accept-Language": "en"})).text
    assert "Charter version 1, published on" in text
    assert "Each booked call includes 2 follow-up questions within 7 days." in text
    assert "Free cancellation up to 24 hours before the start." in text
    assert "Cancelled after that: 100% of the credits are forfeited." in text
    assert "An urgent question is answered within 1\u00a0h of working time" in text
    assert "from €80" in text  # 2 credits at the pack’s 40 € a credit


async def test_archived_packs_leave_the_public_page(client: AsyncClient) -> None:
    expert = await make_published_expert(packs=(("Essentiel", 10, 400_00), ("Vieux", 5, 100_00)))
    old = await CreditPack.objects().get(CreditPack.name == "Vieux")
    await pack_set_active(expert=expert, pack_id=old.id, active=False)
    text = (await client.get("/e/alice-expert")).text
    assert "Essentiel" in text and "Vieux" not in text


# --- the expert's editor ----------------------------------------------------------------


async def test_only_the_expert_edits_the_charter(client: AsyncClient) -> None:
    assert (await client.get("/expert/charter", follow_redirects=False)).status_code == 302
    await make_user("client@example.org")
    await login(client, "client@example.org")
    assert (await client.get("/expert/charter")).status_code == 403
    assert (
        await post_form(client, "/expert/charter/publish", {}, from_page="/me")
    ).status_code == 403


async def test_expert_changes_a_price_reviews_and_publishes(client: AsyncClient) -> None:
    await make_published_expert()
    await login(client, "expert@example.org")
    editor = await client.get("/expert/charter")
    assert editor.status_code == 200
    assert 'name="call_30" id="f-call_30" value="2"' in editor.text
    from portal.charter.rules import to_form

    form = to_form(Rules())
    form["call_30"] = "3"
    saved = await post_form(client, "/expert/charter", form, from_page="/expert/charter")
    assert saved.status_code == 303
    # Clients still see version 1 with the old price.
    assert "version 1" in (await client.get("/e/alice-expert")).text
    review = await client.get("/expert/charter/publish")
    assert "Prix des appels" in review.text
    assert "30\u00a0min\u202f: 2 crédits" in review.text
    assert "30\u00a0min\u202f: 3 crédits" in review.text
    assert "Publier la version 2" in review.text
    reviewed = re.search(r'name="reviewed" value="([0-9a-f]+)"', review.text).group(1)  # type: ignore[union-attr]
    # Meanwhile, in another tab, the draft changes: what was reviewed is not published.
    await draft_save(
        expert=await expert_of("expert@example.org"),
        rules=msgspec.structs.replace(Rules(), call_prices={15: 1, 30: 4, 45: 3}),
    )
    stale = await post_form(
        client, "/expert/charter/publish", {"reviewed": reviewed}, from_page="/expert/charter"
    )
    assert stale.status_code == 303 and stale.headers["location"] == "/expert/charter/publish"
    assert "version 1" in (await client.get("/e/alice-expert")).text
    await draft_save(
        expert=await expert_of("expert@example.org"),
        rules=msgspec.structs.replace(Rules(), call_prices={15: 1, 30: 3, 45: 3}),
    )
    published = await post_form(
        client, "/expert/charter/publish", {"reviewed": reviewed}, from_page="/expert/charter"
    )
    assert published.status_code == 303
    page = (await client.get("/e/alice-expert")).text
    assert "version 2" in page and "3 crédits" in page
    old = (await client.get("/e/alice-expert/versions/1")).text
    assert "Vous lisez une version antérieure de cette charte." in old
    assert "Packs de crédits" not in old  # once current and cached with its packs: no more
    nothing = await client.get("/expert/charter/publish")
    assert "Rien à publier" in nothing.text


async def test_bad_rules_get_a_message_per_field_on_the_page(client: AsyncClient) -> None:
    await make_expert()
    await login(client, "expert@example.org")
    from portal.charter.rules import to_form

    form = to_form(Rules())
    form.update(
        call_15="0",
        cancel_late_forfeit_percent="150",
        urgent_deadline_minutes="99999",
        hours_tue="18:00-09:00",
    )
    response = await post_form(client, "/expert/charter", form, from_page="/expert/charter")
    assert response.status_code == 422
    assert "Un prix est un nombre entier de crédits, de 1 à 1000." in response.text
    assert "Un pourcentage de 0 à 100." in response.text
    assert "Une plage doit finir après son début." in response.text
    assert 'value="150"' in response.text  # what was typed stays in the form
    assert await draft_get(expert=await expert_of("expert@example.org")) == Rules()


async def test_live_preview_is_a_fragment(client: AsyncClient) -> None:
    await make_published_expert()
    await login(client, "expert@example.org")
    from portal.charter.rules import to_form

    form = to_form(Rules())
    form["answer_price"] = "7"
    token_page = await client.get("/expert/charter")
    from tests.support import csrf_from

    response = await client.post(
        "/expert/charter/preview",
        data=form,
        headers={"HX-Request": "true", "x-csrftoken": csrf_from(token_page.text)},
    )
    assert response.status_code == 200
    assert response.headers["vary"] == "HX-Request"
    assert response.text.lstrip().startswith('<div id="preview"')
    assert "<html" not in response.text
    assert "7 crédits" in response.text
    form["answer_price"] = "zero"
    response = await client.post(
        "/expert/charter/preview",
        data=form,
        headers={"HX-Request": "true", "x-csrftoken": csrf_from(token_page.text)},
    )
    assert "L’aperçu attend la correction des champs en erreur." in response.text


async def test_packs_page_creates_and_archives(client: AsyncClient) -> None:
    await make_published_expert(packs=())
    await login(client, "expert@example.org")
    bad = await post_form(
        client,
        "/expert/packs",
        {"name": "", "credits": "0", "price": "abc"},
        from_page="/expert/packs",
    )
    assert bad.status_code == 422
    assert "Un prix de 0,01 à 10\u202f000,00." in bad.text or "Un prix de 0,01" in bad.text
    ok = await post_form(
        client,
        "/expert/packs",
        {"name": "Essentiel", "credits": "10", "price": "420,00"},
        from_page="/expert/packs",
    )
    assert ok.status_code == 303
    pack = await CreditPack.objects().get(CreditPack.name == "Essentiel")
    assert (pack.credits, pack.price_minor, pack.active) == (10, 420_00, True)
    assert "420,00\u00a0€" in (await client.get("/e/alice-expert")).text
    archived = await post_form(
        client, f"/expert/packs/{pack.id}/archive", {}, from_page="/expert/packs"
    )
    assert archived.status_code == 303
    assert "Essentiel" not in (await client.get("/e/alice-expert")).text


async def test_another_experts_pack_is_not_found(client: AsyncClient) -> None:
    other = await make_published_expert("other@example.org", slug="other")
    pack = await CreditPack.objects().get(CreditPack.expert == other.id)
    await make_expert()
    await login(client, "expert@example.org")
    response = await post_form(
        client, f"/expert/packs/{pack.id}/archive", {}, from_page="/expert/packs"
    )
    assert response.status_code == 404
    assert (await CreditPack.objects().get(CreditPack.id == pack.id)).active is True


# --- the JSON API -----------------------------------------------------------------------


async def _bearer(client: AsyncClient, email: str) -> dict[str, str]:
    response = await client.post("/api/v1/tokens", json={"email": email, "password": PASSWORD})
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def test_api_public_profile(client: AsyncClient) -> None:
    await make_published_expert()
    body = (await client.get("/api/v1/experts/alice-expert")).json()
    assert body["slug"] == "alice-expert"
    assert body["charter"]["version"] == 1
    assert body["charter"]["rules"]["call_prices"] == {"15": 1, "30": 2, "45": 3}
    assert body["packs"] == [
        {
            "id": body["packs"][0]["id"],
            "name": "Starter",
            "credits": 10,
            "price": 400_00,
            "currency": "EUR",
            "active": True,
        }
    ]


async def test_api_expert_edits_and_publishes(client: AsyncClient) -> None:
    await make_expert()
    headers = await _bearer(client, "expert@example.org")
    current = (await client.get("/api/v1/expert/charter", headers=headers)).json()
    assert current["published"] is None
    draft = current["draft"]
    draft["video_prices"] = {"15": 1}
    saved = await client.put("/api/v1/expert/charter", json=draft, headers=headers)
    assert saved.status_code == 200 and saved.json()["draft"]["video_prices"] == {"15": 1}
    published = await client.post("/api/v1/expert/charter/publish", headers=headers)
    assert published.status_code == 201 and published.json()["version"] == 1
    again = await client.post("/api/v1/expert/charter/publish", headers=headers)
    assert again.status_code == 409 and again.json()["code"] == "nothing_to_publish"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"call_prices": {"20": 1}}, "call_prices"),
        ({"call_prices": {"30": 0}}, "call_prices.30"),
        ({"working_hours": {"mon": [{"start": "18:00", "end": "09:00"}]}}, "working_hours.mon"),
        ({"no_show_client_percent": 150}, "no_show_client_percent"),
        ({"urgent_deadline_minutes": 100_000}, "urgent_deadline_minutes"),
        ({"call_prices": {}, "video_prices": {}}, "channels"),
    ],
)
async def test_api_refuses_bad_rules_per_field(
    client: AsyncClient, change: dict[str, object], field: str
) -> None:
    await make_expert()
    headers = await _bearer(client, "expert@example.org")
    draft = (await client.get("/api/v1/expert/charter", headers=headers)).json()["draft"]
    response = await client.put("/api/v1/expert/charter", json={**draft, **change}, headers=headers)
    assert response.status_code == 422
    assert field in response.json()["errors"]


async def test_api_refuses_a_partial_draft(client: AsyncClient) -> None:
    """A forgotten rule is refused, never silently reset to a default."""
    await make_expert()
    headers = await _bearer(client, "expert@example.org")
    response = await client.put(
        "/api/v1/expert/charter", json={"call_prices": {"30": 2}}, headers=headers
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"
    garbage = await client.put("/api/v1/expert/charter", content=b"{", headers=headers)
    assert garbage.status_code == 422


async def test_api_authorization(client: AsyncClient) -> None:
    await make_user("client@example.org")
    assert (await client.get("/api/v1/expert/charter")).status_code == 401
    headers = await _bearer(client, "client@example.org")
    forbidden = await client.get("/api/v1/expert/charter", headers=headers)
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "forbidden"
    assert (
        await client.post(
            "/api/v1/expert/packs", json={"name": "x", "credits": 1, "price": 1}, headers=headers
        )
    ).status_code == 403


async def test_api_packs(client: AsyncClient) -> None:
    await make_expert()
    other = await make_published_expert("other@example.org", slug="other")
    foreign = await CreditPack.objects().get(CreditPack.expert == other.id)
    headers = await _bearer(client, "expert@example.org")
    created = await client.post(
        "/api/v1/expert/packs",
        json={"name": "Pro", "credits": 20, "price": 700_00},
        headers=headers,
    )
    assert created.status_code == 201
    pack_id = created.json()["id"]
    bad = await client.post(
        "/api/v1/expert/packs", json={"name": "Pro", "credits": -1, "price": 0}, headers=headers
    )
    assert bad.status_code == 422 and set(bad.json()["errors"]) == {"credits", "price"}
    archived = await client.post(f"/api/v1/expert/packs/{pack_id}/archive", headers=headers)
    assert archived.status_code == 200 and archived.json()["active"] is False
    listed = (await client.get("/api/v1/expert/packs", headers=headers)).json()
    assert [p["id"] for p in listed] == [pack_id]
    assert (
        await client.post(f"/api/v1/expert/packs/{foreign.id}/archive", headers=headers)
    ).status_code == 404
    huge = await client.post("/api/v1/expert/packs/99999999999999999999/archive", headers=headers)
    assert huge.status_code == 422  # refused before any query, not a 500


async def test_openapi_describes_the_charter(client: AsyncClient) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    for path in (
        "/api/v1/experts/{slug}",
        "/api/v1/expert/charter",
        "/api/v1/expert/charter/publish",
        "/api/v1/expert/packs",
    ):
        assert path in schema["paths"]
    assert "put" in schema["paths"]["/api/v1/expert/charter"]
    rules = schema["components"]["schemas"]["Rules"]["properties"]
    assert {"call_prices", "urgent_deadline_minutes", "working_hours"} <= set(rules)


async def test_expert_edits_the_public_profile(client: AsyncClient) -> None:
    await make_published_expert()
    await login(client, "expert@example.org")
    bad = await post_form(
        client,
        "/expert/profile",
        {"display_name": " ", "headline": "x" * 201, "bio": ""},
        from_page="/expert",
    )
    assert bad.status_code == 422
    assert "Saisissez le nom que verront les clients" in bad.text
    ok = await post_form(
        client,
        "/expert/profile",
        {"display_name": "Alice Martin", "headline": "Fiscaliste <b>", "bio": "Lyon"},
        from_page="/expert",
    )
    assert ok.status_code == 303
    page = (await client.get("/e/alice-expert")).text
    assert "<h1>Alice Martin</h1>" in page and "Fiscaliste &lt;b&gt;" in page


async def test_odd_input_on_pages_is_never_a_server_error(client: AsyncClient) -> None:
    await make_published_expert()
    await login(client, "expert@example.org")
    assert (await client.get("/e/alice-expert/versions/99999999999999999999")).status_code == 422
    assert (await client.get("/e/alice-expert/versions/0")).status_code in (404, 422)
    assert (await client.get("/e/alice-expert/versions/7")).status_code == 404
    superscript = await post_form(
        client,
        "/expert/packs",
        {"name": "Pro", "credits": "²", "price": "10"},
        from_page="/expert/packs",
    )
    assert superscript.status_code == 422
    nul = await post_form(
        client,
        "/expert/packs",
        {"name": "Pro\x00", "credits": "2", "price": "10"},
        from_page="/expert/packs",
    )
    assert nul.status_code == 303
    assert await CreditPack.count().where(CreditPack.name == "Pro") == 1
