"""A host's page keeps its images and volumes live (issue 17: "all of it live on the host's topic"):
with the page open in Chromium, a volume made and an image tagged from outside the portal appear in
their tables, and go again when removed, without a reload (the engines watcher's news, then the
section read again)."""

from __future__ import annotations

import contextlib
import uuid
from contextlib import closing

import docker.errors
import pytest
from playwright.sync_api import expect

from hosts.models import EngineObject
from portal.models import Project, Role
from tests.e2e.test_fleet_live import watching_daphne  # noqa: F401 - the fixture, shared
from tests.e2e.test_sign_in_and_live_activity import sign_in
from tests.hosts.conftest import trusted_host
from tests.lab import engines
from tests.lab.common import wait_until

pytestmark = pytest.mark.lab


@pytest.mark.timeout(180)
def test_a_volume_and_a_tag_made_outside_show_on_the_open_host_page(
    watching_daphne,  # noqa: F811
    make_user,
    browser,
    lab_engines,
) -> None:
    tls_engine = next(e for e in lab_engines if e["tls"])
    project = Project.objects.create(name="Objects live")
    make_user("viewer", project=project, role=Role.VIEWER)
    host = trusted_host(tls_engine, project, name="photon-objects")
    busybox = next(ref for ref in tls_engine["images"] if ref.startswith("lab/busybox"))
    tag = uuid.uuid4().hex[:8]
    volume, image = f"live-{tag}", f"lab/live{tag}:1"

    page = browser.new_context().new_page()
    sign_in(page, watching_daphne, "viewer")
    page.goto(f"{watching_daphne}/hosts/{host.pk}/")
    expect(page.locator("#volume-rows")).to_be_visible(timeout=20_000)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=10_000)
    page.evaluate("window.__notReloaded = true")
    # The watcher's stream of this host is up once it has read the host for the fleet search.
    wait_until(EngineObject.objects.filter(host=host).exists, timeout=30, what="the engine's event stream")
    with closing(engines.connect(tls_engine)) as sdk:
        try:
            sdk.volumes.create(volume)
            sdk.images.get(busybox).tag(image)
            expect(page.locator("#volume-rows")).to_contain_text(volume, timeout=20_000)
            expect(page.locator("#image-rows")).to_contain_text(image, timeout=20_000)
            sdk.volumes.get(volume).remove()
            sdk.images.remove(image)
            expect(page.locator("#volume-rows")).not_to_contain_text(volume, timeout=20_000)
            expect(page.locator("#image-rows")).not_to_contain_text(image, timeout=20_000)
        finally:
            # What the test removed is already gone: only what a failure left behind goes here.
            with contextlib.suppress(docker.errors.NotFound):
                sdk.volumes.get(volume).remove()
            with contextlib.suppress(docker.errors.ImageNotFound):
                sdk.images.remove(image)
    assert page.evaluate("window.__notReloaded") is True
    page.context.close()
