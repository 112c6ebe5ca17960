"""Newest first on a 1,050-tag repository: a placeholder at once, dates read once, every page
served from the cached order."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.urls import reverse

from registry.browse import Browser
from registry.clients import http
from registry.clients.distribution import DistributionClient
from registry.clients.harbor import HarborClient
from registry.models import Registry
from tests.lab import seed

SEED = seed.describe()
MANY = SEED.many_tags_repo
PAGE = 50


def repo_url(registry: Registry, **query: str) -> str:
    url = reverse("registry:repository", args=[registry.pk, MANY])
    return url + "?" + "&".join(f"{k}={v}" for k, v in query.items())


def test_a_placeholder_then_the_order_computed_once_for_every_page(client, viewer, lab_registry) -> None:  # type: ignore[no-untyped-def]
    registry = lab_registry("token")
    client.force_login(viewer)

    before = http.requests_made
    shell = client.get(repo_url(registry, sort="newest"))
    assert shell.status_code == 200
    html = shell.content.decode()
    # Never a blank wait: the page answers at once and its table asks for itself.
    assert "Sorting 1,050 tags by date…" in html
    assert 'hx-trigger="load"' in html and "hx-indicator" in html
    assert shell.context["rows"] == []
    assert http.requests_made - before <= 4, "the page did not wait for every tag's date"

    table = client.get(repo_url(registry, sort="newest", page="1"), HTTP_HX_REQUEST="true")
    assert table.status_code == 200
    rows = table.context["rows"]
    assert [row.tag for row in rows[:3]] == ["build-1050", "build-1049", "build-1048"]
    assert [row.created for row in rows] == sorted((row.created for row in rows), reverse=True)

    # The order outlives the tags' details (those are kept only REGISTRY_CACHE_SECONDS):
    # with them dropped, a later page still reads only its own tags.
    with Browser(registry) as browser:
        for tag in SEED.tags[MANY]:
            browser.forget("tag", MANY, tag)
    for page in (2, 3):
        before = http.requests_made
        response = client.get(repo_url(registry, sort="newest", page=str(page)))
        assert "Sorting" not in response.content.decode(), "a cached order shows no placeholder"
        tags = [row.tag for row in response.context["rows"]]
        assert tags[0] == f"build-{1050 - (page - 1) * PAGE}" and len(tags) == PAGE
        assert http.requests_made - before <= 2 * PAGE + 4, http.requests_made - before


def test_refresh_orders_the_tags_anew(client, viewer, lab_registry) -> None:  # type: ignore[no-untyped-def]
    registry = lab_registry("anonymous")
    client.force_login(viewer)
    url = reverse("registry:repository", args=[registry.pk, "library/photon"])
    client.get(url, {"sort": "newest"}, HTTP_HX_REQUEST="true")
    assert "Sorting" not in client.get(url, {"sort": "newest"}).content.decode()
    again = client.get(url, {"sort": "newest", "refresh": "1"}).content.decode()
    assert "Sorting 4 tags by date…" in again and "refresh=1" in again


def test_dating_stops_at_the_deadline_and_says_what_it_could_not_date(  # type: ignore[no-untyped-def]
    client, viewer, lab_registry, settings
) -> None:
    registry = lab_registry("anonymous")
    client.force_login(viewer)
    assert client.get(repo_url(registry)).status_code == 200  # the tag list, read and cached
    # Far too short to read 1,050 manifests and configs: the order is partial, not a hang.
    settings.REGISTRY_DEADLINE = 0.2
    response = client.get(repo_url(registry, sort="newest"), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    listing = response.context["listing"]
    assert 0 < listing.undated <= 1050
    assert f"{listing.undated:,} without a date come last." in response.content.decode()
    with Browser(registry) as browser:
        order = browser.cached_newest_order(MANY, list(SEED.tags[MANY]))
    assert order is not None and not order.complete


class Reads:
    """What the registry was asked for, counted by (kind, reference): a spy on the real client
    (the requests still go to the lab registry)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        manifest, config = DistributionClient.manifest, DistributionClient.config

        def counted_manifest(client: DistributionClient, repository: str, reference: str) -> Any:
            self._add("manifest", reference)
            return manifest(client, repository, reference)

        def counted_config(client: DistributionClient, repository: str, digest: str) -> Any:
            self._add("config", digest)
            return config(client, repository, digest)

        monkeypatch.setattr(DistributionClient, "manifest", counted_manifest)
        monkeypatch.setattr(DistributionClient, "config", counted_config)

    def _add(self, kind: str, reference: str) -> None:
        with self._lock:
            self.counts[kind, reference] += 1

    def of(self, kind: str) -> Counter[str]:
        return Counter({ref: n for (k, ref), n in self.counts.items() if k == kind})


def test_two_pages_read_each_manifest_and_config_once(client, viewer, lab_registry, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    registry = lab_registry("token")
    client.force_login(viewer)
    reads = Reads(monkeypatch)

    first = client.get(repo_url(registry, sort="newest", page="1"), HTTP_HX_REQUEST="true")
    second = client.get(repo_url(registry, sort="newest", page="2"))
    rows = [*first.context["rows"], *second.context["rows"]]
    assert [row.tag for row in rows] == [f"build-{n}" for n in range(1050, 1050 - 2 * PAGE, -1)]
    # Dating read every tag once; the pages' details are what dating read, not read again.
    manifests, configs = reads.of("manifest"), reads.of("config")
    assert len(manifests) == 1050 and max(manifests.values()) == 1, manifests.most_common(3)
    assert len(configs) == 1050 and max(configs.values()) == 1, configs.most_common(3)


def test_a_tag_pushed_later_comes_first_once_the_tag_list_changes(  # type: ignore[no-untyped-def]
    client, viewer, lab_registry, lab_registries, scratch_images, monkeypatch
) -> None:
    info = next(r for r in lab_registries if r["name"] == "anonymous")
    registry = lab_registry("anonymous")
    client.force_login(viewer)
    repository, _ = scratch_images(info)
    url = reverse("registry:repository", args=[registry.pk, repository])
    before = client.get(url, {"sort": "newest"}, HTTP_HX_REQUEST="true")
    assert sorted(row.tag for row in before.context["rows"]) == ["also-one", "one", "two"]

    later = seed._manifest(
        seed.Image(("base-amd64",), datetime.now(UTC) + timedelta(days=1), labels={"run": repository})
    )
    layers = tuple(blob for blob, _ in seed._layers().values())
    seed.push(str(info["url"]), seed.Plan({repository: {"three": later}}, layers, source=repository))
    # The cached order stands while the cached tag list does; once the list is read anew
    # (it expired, or a delete or Refresh dropped it) the order is computed for the new list.
    assert "three" not in [r.tag for r in client.get(url, {"sort": "newest"}).context["rows"]]
    with Browser(registry) as browser:
        browser.forget("tags", repository)

    reads = Reads(monkeypatch)
    after = client.get(url, {"sort": "newest"}, HTTP_HX_REQUEST="true")
    assert after.context["rows"][0].tag == "three"
    # Re-dating reads the new tag alone: the others' details (and dates) were read moments
    # ago and are still cached, and the page shows what dating read.
    assert reads.of("manifest") == Counter({"three": 1})
    assert reads.of("config") == Counter({json.loads(later.data)["config"]["digest"]: 1})


def test_harbor_dates_images_from_its_artifact_list(client, viewer, harbor_registry, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    client.force_login(viewer)
    reads = Reads(monkeypatch)
    listed: list[int] = []
    artifacts = HarborClient.artifacts

    def counted(harbor: HarborClient, repository: str, page: int = 1, page_size: int = 25) -> Any:
        listed.append(page_size)
        return artifacts(harbor, repository, page, page_size)

    monkeypatch.setattr(HarborClient, "artifacts", counted)
    url = f"/api/registries/{harbor_registry.pk}/tags/"
    answer = client.get(url, {"repository": MANY, "sort": "newest", "page_size": PAGE})
    assert answer.status_code == 200, answer.content[:300]
    rows = answer.json()["results"]
    assert [row["tag"] for row in rows] == [f"build-{n}" for n in range(1050, 1050 - PAGE, -1)]
    # Harbor lists each image with its config's date, 100 artifacts a call: 11 calls date
    # 1,050 tags, and the registry is read for the page's own details only.
    assert listed == [100] * 11
    assert sum(reads.of("manifest").values()) == PAGE and sum(reads.of("config").values()) == PAGE
