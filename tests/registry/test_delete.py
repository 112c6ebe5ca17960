"""Deleting tags and artifacts by digest, after a confirmation that lists every tag on it.

Each test pushes a repository of its own (``scratch_images``) and deletes only from it.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from portal.models import AuditEntry
from registry.clients.distribution import DistributionClient
from registry.clients.errors import NotFound
from registry.clients.http import Transport
from registry.models import Registry
from tests.lab import seed

SEED = seed.describe()


def delete_url(registry: Registry, repository: str) -> str:
    return reverse("registry:delete", args=[registry.pk, repository])


def lab_info(lab_registries: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(r for r in lab_registries if r["name"] == name)


def reader(registry: Registry) -> DistributionClient:
    return DistributionClient(
        Transport(registry.url, username=registry.username, password=str(registry.password or ""))
    )


def _confirm_then_delete(client, registry: Registry, repository: str, digests: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    url = delete_url(registry, repository)
    confirm = client.get(url, {"reference": "one"})
    assert confirm.status_code == 200
    # Every tag on the digest is listed, because every one of them goes.
    assert confirm.context["tags"] == ["also-one", "one"]
    assert confirm.context["digest"] == digests["one"]
    assert "every tag on this digest is deleted" in confirm.content.decode()
    assert reader(registry).digest(repository, "one") == digests["one"], "looking deletes nothing"

    response = client.post(url, {"reference": "one", "digest": digests["one"], "what": "artifact"})
    assert response.status_code == 302, response.content.decode()[-2000:]
    page = client.get(reverse("registry:repository", args=[registry.pk, repository]))
    assert [row.tag for row in page.context["rows"]] == ["two"], "gone at once: the cache was dropped"
    for tag in ("one", "also-one"):
        try:
            reader(registry).digest(repository, tag)
            raise AssertionError(f"{tag} still there")
        except NotFound:
            pass
    entry = AuditEntry.objects.get(action="registry.delete_artifact")
    assert entry.before == {"repository": repository, "digest": digests["one"], "tags": ["also-one", "one"]}
    assert entry.project is not None and entry.actor_name == "paula"


def test_project_admin_deletes_in_the_anonymous_registry(  # type: ignore[no-untyped-def]
    client, project_admin, lab_registry, lab_registries, scratch_images
) -> None:
    repository, digests = scratch_images(lab_info(lab_registries, "anonymous"))
    client.force_login(project_admin)
    _confirm_then_delete(client, lab_registry("anonymous"), repository, digests)


def test_project_admin_deletes_in_the_token_registry(  # type: ignore[no-untyped-def]
    client, project_admin, lab_registry, lab_registries, scratch_images
) -> None:
    repository, digests = scratch_images(lab_info(lab_registries, "token"))
    client.force_login(project_admin)
    _confirm_then_delete(client, lab_registry("token"), repository, digests)


def test_a_registry_with_deletes_disabled_says_so(client, project_admin, lab_registry) -> None:  # type: ignore[no-untyped-def]
    registry = lab_registry("basic")
    client.force_login(project_admin)
    repository = SEED.delete_repo
    response = client.post(
        delete_url(registry, repository),
        {"reference": "b", "digest": SEED.digest(repository, "b"), "what": "artifact"},
    )
    assert response.status_code == 502
    assert "does not allow deletes" in response.content.decode()
    assert not AuditEntry.objects.filter(action__startswith="registry.delete").exists()


def test_a_tag_that_moved_since_the_confirmation_is_not_deleted(  # type: ignore[no-untyped-def]
    client, project_admin, lab_registry, lab_registries, scratch_images
) -> None:
    repository, digests = scratch_images(lab_info(lab_registries, "anonymous"))
    registry = lab_registry("anonymous")
    client.force_login(project_admin)
    # Confirmed for "two" while (as far as the form knew) it pointed at one's digest.
    response = client.post(delete_url(registry, repository), {"reference": "two", "digest": digests["one"]})
    assert response.status_code == 302
    assert reader(registry).digest(repository, "two") == digests["two"]
    assert reader(registry).digest(repository, "one") == digests["one"]
    assert not AuditEntry.objects.filter(action__startswith="registry.delete").exists()


def test_harbor_deletes_one_tag_then_the_artifact(  # type: ignore[no-untyped-def]
    client, project_admin, harbor_registry, lab_harbor, scratch_images
) -> None:
    repository, digests = scratch_images({"url": lab_harbor["backend_url"]})
    client.force_login(project_admin)
    url = delete_url(harbor_registry, repository)
    confirm = client.get(url, {"reference": "one", "what": "tag"})
    assert confirm.status_code == 200, confirm.content.decode()[-1500:]
    assert confirm.context["what"] == "tag" and confirm.context["tags"] == ["also-one", "one"]
    response = client.post(url, {"reference": "one", "digest": digests["one"], "what": "tag"})
    assert response.status_code == 302, response.content.decode()[-2000:]
    artifacts = client.get(reverse("registry:repository", args=[harbor_registry.pk, repository])).context[
        "artifacts"
    ]
    assert {a["digest"]: a["tags"] for a in artifacts}[digests["one"]] == ["also-one"], "only the tag went"
    assert AuditEntry.objects.filter(action="registry.delete_tag").exists()

    response = client.post(url, {"reference": digests["one"], "digest": digests["one"], "what": "artifact"})
    assert response.status_code == 302
    artifacts = client.get(reverse("registry:repository", args=[harbor_registry.pk, repository])).context[
        "artifacts"
    ]
    assert [a["tags"] for a in artifacts] == [["two"]]
    assert AuditEntry.objects.filter(action="registry.delete_artifact").exists()
