"""Browsing the lab's Harbor (its API emulator, held to Harbor's spec) through the portal."""

from __future__ import annotations

import re

from django.urls import reverse

from registry.clients.harbor import repository_path
from tests.lab import seed

SEED = seed.describe()


def test_projects_page_with_x_total_count(client, viewer, harbor_registry) -> None:  # type: ignore[no-untyped-def]
    client.force_login(viewer)
    response = client.get(reverse("registry:registry", args=[harbor_registry.pk]))
    assert response.status_code == 200, response.content[:500]
    names = [p["name"] for p in response.context["projects"]]
    assert len(names) == 25 and "library" in names
    total = response.context["total"]
    assert total > 25 and response.context["pages"] == 2
    second = client.get(reverse("registry:registry", args=[harbor_registry.pk]), {"page": 2})
    names += [p["name"] for p in second.context["projects"]]
    assert len(names) == total and len(set(names)) == total
    found = client.get(reverse("registry:registry", args=[harbor_registry.pk]), {"q": "team-"})
    assert sorted(p["name"] for p in found.context["projects"]) == ["team-a", "team-b"]


def test_repositories_with_artifact_and_pull_counts(client, viewer, harbor_registry) -> None:  # type: ignore[no-untyped-def]
    client.force_login(viewer)
    response = client.get(reverse("registry:harbor_project", args=[harbor_registry.pk, "team-a"]))
    assert response.status_code == 200
    (row,) = response.context["repositories"]
    assert row["name"] == "team-a/app/api" and row["artifact_count"] == 3 and row["pull_count"] >= 0


def test_artifacts_with_tags_labels_scan_and_accessories(client, viewer, harbor_registry) -> None:  # type: ignore[no-untyped-def]
    client.force_login(viewer)
    # Three levels of name: Harbor needs the part after the project encoded twice.
    assert repository_path("team-a/app/api").endswith("/projects/team-a/repositories/app%252Fapi")
    response = client.get(reverse("registry:repository", args=[harbor_registry.pk, "team-a/app/api"]))
    assert response.status_code == 200, response.content[:800]
    artifacts = response.context["artifacts"]
    assert sorted(t for a in artifacts for t in a["tags"]) == ["v1.0.0", "v1.1.0", "v1.2.0"]
    assert all(a["push_time"] and a["pull_time"] and a["platforms"] == ["linux/amd64"] for a in artifacts)
    scanned = [a for a in artifacts if a["scan"]]
    for a in scanned:
        assert a["scan"]["severity"] in {"Critical", "High", "Medium", "Low", "None"}
        assert sum(n for _, n in a["scan"]["counts"]) == a["scan"]["total"]
    html = response.content.decode()
    assert "not scanned" in html or scanned == artifacts


def test_many_artifacts_page_with_page_size(client, viewer, harbor_registry) -> None:  # type: ignore[no-untyped-def]
    client.force_login(viewer)
    url = reverse("registry:repository", args=[harbor_registry.pk, SEED.many_tags_repo])
    response = client.get(url, {"page_size": 100, "page": 3})
    assert response.status_code == 200
    assert response.context["total"] == len(SEED.tags[SEED.many_tags_repo])
    assert len(response.context["artifacts"]) == 100
    assert 'rel="next"' in response.content.decode()


def test_multi_platform_artifact_shows_both_platforms_and_layers(client, viewer, harbor_registry) -> None:  # type: ignore[no-untyped-def]
    client.force_login(viewer)
    repository, tag = SEED.multi_arch
    response = client.get(reverse("registry:tag", args=[harbor_registry.pk, repository, tag]))
    assert response.status_code == 200, response.content[:800]
    assert sorted(response.context["artifact"]["platforms"]) == ["linux/amd64", "linux/arm64"]
    details = response.context["details"]
    assert sorted(details.platforms) == ["linux/amd64", "linux/arm64"]
    assert all(image.layers for image in details.images)
    assert response.context["shared_tags"] == ["latest"]
    html = response.content.decode()
    assert re.search(r'id="accessories">.*?(none|signature\.cosign)', html, re.S)
