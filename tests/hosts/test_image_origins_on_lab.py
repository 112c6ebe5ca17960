"""Where a host's images came from (issue 17), on lab engines and registries: an image pulled from a
registry shared with the host's project names it, links to the tag's page, and is marked "newer in
registry" once another engine pushes a newer image under the same tag and the registry cache next
refreshes; an image from Harbor shows Harbor's scan summary of the digest the host has. A registry
not shared with the host's project is never asked, and a registry that does not answer costs only
its marker."""

from __future__ import annotations

import contextlib
import uuid
from contextlib import closing
from typing import Any

import docker.errors
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from registry.models import Registry
from tests.hosts.conftest import trusted_host
from tests.hosts.test_recreate_on_lab import _push
from tests.lab import engines
from tests.lab.common import wait_until
from tests.lab.harbor_emulator import HARBOR_VULN_MIME, scan_overview_for
from tests.registry.conftest import registry_from

pytestmark = [pytest.mark.django_db, pytest.mark.lab]


@pytest.fixture(autouse=True)
def own_cache(settings) -> None:  # type: ignore[no-untyped-def]
    settings.REGISTRY_CACHE_NAMESPACE = f"test-{uuid.uuid4().hex[:12]}:"


def image_row(client: Any, host_pk: int, image_id: str) -> str:
    page = client.get(reverse("hosts:engine_objects", args=[host_pk])).content.decode()
    start = page.index(f'id="image-{image_id.removeprefix("sha256:")[:12]}"')
    return page[start : page.index("</tr>", start)]


@pytest.mark.timeout(240)
def test_an_image_names_its_registry_and_is_marked_once_the_tag_moves_on(
    client, people, project, other_project, tls_engine, plain_engine, lab_registries, settings
) -> None:
    info = next(r for r in lab_registries if r["name"] == "anonymous")
    registry = registry_from(info, name="lab-anon", projects=[project])
    host = trusted_host(tls_engine, project, "photon-origins")
    busybox = next(ref for ref in tls_engine["images"] if ref.startswith("lab/busybox:"))
    # scratch/portal-…: the lab registry's catalog tests leave the suite's own repositories out.
    image = f"{registry.host}/scratch/portal-orig{uuid.uuid4().hex[:8]}:1"
    client.force_login(people["viewer"])
    with closing(engines.connect(tls_engine)) as sdk, closing(engines.connect(plain_engine)) as other:
        _push(sdk, busybox, image, ["LABEL release=1"])
        mine = sdk.images.get(image)
        try:
            settings.REGISTRY_CACHE_SECONDS = 2
            row = image_row(client, host.pk, mine.id)
            repository = image.split("/", 1)[1].rsplit(":", 1)[0]
            assert 'href="' + reverse("registry:tag", args=[registry.pk, repository, "1"]) + '"' in row
            assert ">lab-anon</a>" in row and "newer in registry" not in row

            # Another engine pushes a newer image under the tag; this host still has the first.
            plain_busybox = next(ref for ref in plain_engine["images"] if ref.startswith("lab/busybox:"))
            _push(other, plain_busybox, image, ["LABEL release=2"])
            assert sdk.images.get(image).id == mine.id
            wait_until(
                lambda: "newer in registry" in image_row(client, host.pk, mine.id),
                timeout=30,
                what="the marker after the registry cache's refresh",
            )

            # Shared with another project only: not asked, nothing shown (and no registry read).
            registry.projects.set([other_project])
            assert "lab-anon" not in image_row(client, host.pk, mine.id)

            # A registry that does not answer, named by another tag of the same image: that tag
            # says so, the other one keeps its link, and the page is there.
            registry.projects.set([project])
            Registry.objects.create(name="gone", url="http://127.0.0.1:9").projects.set([project])
            mine.tag("127.0.0.1:9/scratch/dead", "1")
            row = image_row(client, host.pk, mine.id)
            assert ">lab-anon</a>" in row and "gone: not answering" in row
        finally:
            for engine in (sdk, other):
                engine.images.remove(image, force=True)
            with contextlib.suppress(docker.errors.ImageNotFound):
                sdk.images.remove("127.0.0.1:9/scratch/dead:1")


@pytest.mark.timeout(240)
def test_an_image_from_harbor_shows_the_scan_of_the_digest_the_host_has(
    client, people, project, tls_engine, lab_harbor
) -> None:
    registry = registry_from(lab_harbor, name="harbor", projects=[project])
    host = trusted_host(tls_engine, project, "photon-harbor")
    image = f"{registry.host}/library/orig{uuid.uuid4().hex[:8]}:1"
    repository, tag = image.rsplit(":", 1)
    busybox = next(ref for ref in tls_engine["images"] if ref.startswith("lab/busybox:"))
    admin = {"username": lab_harbor["admin_user"], "password": lab_harbor["admin_password"]}
    with closing(engines.connect(tls_engine)) as sdk:
        try:
            # The emulator leaves one digest in five unscanned: a label changes the digest until
            # Harbor has a scan of it to show.
            for variant in range(20):
                made = sdk.containers.create(busybox, ["true"])
                made.commit(repository=repository, tag=tag, changes=[f"LABEL variant={variant}"])
                made.remove()
                for line in sdk.api.push(repository, tag=tag, auth_config=admin, stream=True, decode=True):
                    assert "error" not in line, line
                pulled = sdk.images.get(image)
                digest = next(d for d in pulled.attrs["RepoDigests"] if d.startswith(repository)).split("@")[
                    1
                ]
                overview = scan_overview_for(digest, HARBOR_VULN_MIME)
                if overview is not None:
                    break
            assert overview is not None
            report = overview[HARBOR_VULN_MIME]
            client.force_login(people["viewer"])
            with CaptureQueriesContext(connection) as queries:
                row = image_row(client, host.pk, pulled.id)
            assert ">harbor</a>" in row and "newer in registry" not in row
            assert f'image-scan" title="{report["summary"]["total"]} vulnerabilities' in row
            assert f">{report['severity']}</span>" in row
            # The registries of the host's project are read once, whatever the number of images.
            assert sum("registry_registry" in q["sql"] for q in queries.captured_queries) == 1
        finally:
            sdk.images.remove(image, force=True)
