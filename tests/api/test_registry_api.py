"""Browsing registries through the API, against the lab's registry and Harbor emulator."""

from __future__ import annotations

from typing import Any

import pytest

from portal.models import Project, Role
from tests.api.common import client_for
from tests.lab import seed
from tests.registry.conftest import registry_from

pytestmark = [pytest.mark.django_db, pytest.mark.lab]
SEED = seed.describe()


@pytest.fixture
def shared(make_user, lab_registries: list[dict[str, Any]]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    web = Project.objects.create(name="web")
    info = next(r for r in lab_registries if r["name"] == "anonymous")
    return {
        "registry": registry_from(info, projects=[web]),
        "viewer": make_user("vera", project=web, role=Role.VIEWER),
        "outsider": make_user("otto", project=Project.objects.create(name="db"), role=Role.PROJECT_ADMIN),
    }


def test_repositories_tags_and_details_are_paged_and_checked(shared) -> None:  # type: ignore[no-untyped-def]
    api, pk = client_for(shared["viewer"]), shared["registry"].pk
    first = api.get(f"/api/registries/{pk}/repositories/", {"page_size": 100})
    assert first.status_code == 200, first.content
    body = first.json()
    assert body["count"] > 100 and len(body["results"]) == 100 and body["next"] and body["previous"] is None
    second = api.get(body["next"]).json()
    assert not {r["name"] for r in body["results"]} & {r["name"] for r in second["results"]}
    found = api.get(f"/api/registries/{pk}/repositories/", {"q": "app/API"}).json()
    assert [r["name"] for r in found["results"]] == ["team-a/app/api"]

    repository, tag = SEED.multi_arch
    tags = api.get(f"/api/registries/{pk}/tags/", {"repository": repository})
    assert tags.status_code == 200, tags.content
    assert tag in {row["tag"] for row in tags.json()["results"]}
    details = api.get(f"/api/registries/{pk}/tag/", {"repository": repository, "reference": tag}).json()
    assert details["digest"] == SEED.digest(repository, tag)
    assert sorted(f"{i['os']}/{i['architecture']}" for i in details["images"]) == [
        "linux/amd64",
        "linux/arm64",
    ]

    # Bad input: a clear 4xx each, nothing asked of the registry that cannot be answered.
    past_end = api.get(f"/api/registries/{pk}/repositories/", {"page": 10_000})
    assert past_end.status_code == 404 and past_end.json()["detail"] == "Invalid page."
    unknown = api.get(f"/api/registries/{pk}/repositories/", {"colour": "red"})
    assert unknown.status_code == 400 and "colour" in unknown.json()["detail"]
    assert api.get(f"/api/registries/{pk}/tags/", {"repository": "../etc"}).status_code == 400
    assert api.get(f"/api/registries/{pk}/tags/", {"repository": repository, "page": "x"}).status_code == 400
    missing = api.get(f"/api/registries/{pk}/tag/", {"repository": repository, "reference": "no-such-tag"})
    assert missing.status_code == 404

    outsider = client_for(shared["outsider"])
    assert outsider.get(f"/api/registries/{pk}/").status_code == 404
    assert outsider.get(f"/api/registries/{pk}/repositories/").status_code == 404


def test_harbor_is_listed_per_project(make_user, lab_harbor) -> None:  # type: ignore[no-untyped-def]
    web = Project.objects.create(name="web")
    harbor = registry_from(lab_harbor, name="harbor", projects=[web])
    api = client_for(make_user("vera", project=web, role=Role.VIEWER))
    assert api.get(f"/api/registries/{harbor.pk}/repositories/").status_code == 400
    listed = api.get(f"/api/registries/{harbor.pk}/repositories/", {"project": "team-a"})
    assert listed.status_code == 200, listed.content
    names = {r["name"] for r in listed.json()["results"]}
    assert names and all(name.startswith("team-a/") for name in names)
