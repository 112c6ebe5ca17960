"""An image's size is its compressed layers plus config, per platform; never the manifest's bytes."""

from __future__ import annotations

import re
from typing import Any

from django.template.defaultfilters import filesizeformat
from django.urls import reverse

from registry.clients.distribution import DistributionClient
from registry.clients.http import Transport
from registry.images import PlatformSize
from tests.lab import seed

SEED = seed.describe()


def expected(url: str, repository: str, tag: str) -> dict[str, int]:
    """platform -> layers + config, added up here from the manifests the registry serves."""
    client = DistributionClient(Transport(url))
    info = SEED.tags[repository][tag]
    digests = info.platforms or {"": info.digest}
    out = {}
    for platform, digest in digests.items():
        doc = client.manifest(repository, digest).doc
        out[platform] = doc["config"]["size"] + sum(layer["size"] for layer in doc["layers"])
    return out


def shown(html: str, where: str) -> str:
    found = re.search(where + r".*?</td>", html, re.S)
    assert found, where
    return re.sub(r"<[^>]+>", " ", found.group(0))


def test_tag_page_shows_each_platforms_layers(client, viewer, lab_registry, lab_registries) -> None:  # type: ignore[no-untyped-def]
    registry = lab_registry("anonymous")
    url = next(r for r in lab_registries if r["name"] == "anonymous")["url"]
    client.force_login(viewer)
    repository, tag = SEED.multi_arch
    sizes = expected(url, repository, tag)
    assert sorted(sizes) == ["linux/amd64", "linux/arm64"]
    response = client.get(reverse("registry:tag", args=[registry.pk, repository, tag]))
    details = response.context["details"]
    assert sorted(details.sizes, key=lambda s: s.platform) == [
        PlatformSize(p, n) for p, n in sorted(sizes.items())
    ]
    cell = shown(response.content.decode(), r'<th>Size \(compressed layers\)</th><td class="left" id="size">')
    for platform, size in sizes.items():
        assert platform in cell and str(filesizeformat(size)) in cell

    repository, tag = SEED.docker_manifest
    (size,) = expected(url, repository, tag).values()
    single = client.get(reverse("registry:tag", args=[registry.pk, repository, tag]))
    assert single.context["details"].sizes == [PlatformSize("", size)]


def test_repository_rows_show_sizes_per_platform(client, viewer, lab_registry, lab_registries) -> None:  # type: ignore[no-untyped-def]
    registry = lab_registry("anonymous")
    url = next(r for r in lab_registries if r["name"] == "anonymous")["url"]
    client.force_login(viewer)
    response = client.get(reverse("registry:repository", args=[registry.pk, "library/photon"]))
    html = response.content.decode()
    assert '<th class="left">Size (compressed layers)</th>' in html
    rows = {row.tag: row for row in response.context["rows"]}
    for tag in ("5.0", "4.0", "3.0"):
        want = expected(url, "library/photon", tag)
        assert {s.platform: s.size for s in rows[tag].sizes} == want


def test_harbor_artifacts_show_sizes_per_platform(  # type: ignore[no-untyped-def]
    client, viewer, harbor_registry, lab_harbor: dict[str, Any]
) -> None:
    client.force_login(viewer)
    repository, tag = SEED.multi_arch
    response = client.get(reverse("registry:repository", args=[harbor_registry.pk, repository]))
    assert response.status_code == 200, response.content[:500]
    (artifact,) = [a for a in response.context["artifacts"] if tag in a["tags"]]
    want = expected(str(lab_harbor["backend_url"]), repository, tag)
    assert {s.platform: s.size for s in artifact["sizes"]} == want
    # Harbor's own figure adds both platforms and the manifests: not what a pull downloads.
    assert artifact["size"] > sum(want.values())
    assert "Size (compressed layers)" in response.content.decode()
