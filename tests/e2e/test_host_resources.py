"""A host's page in Chromium (issue 17): its resources over the last hour drawn (uPlot) and growing
live, its busiest containers by CPU listed with links to their pages, a container spinning a core
first; a container's page draws its own last hour."""

from __future__ import annotations

import re
import uuid
from contextlib import closing

import pytest
from playwright.sync_api import expect

from hosts.stats import history
from portal.models import Project, Role
from tests.e2e.test_sign_in_and_live_activity import sign_in
from tests.hosts.conftest import trusted_host
from tests.lab import engines

pytestmark = pytest.mark.lab


@pytest.mark.timeout(180)
def test_the_host_page_draws_its_resources_and_busiest_containers(
    daphne_factory, make_user, browser, screenshot, lab_engines
) -> None:
    tls_engine = next(e for e in lab_engines if e["tls"])
    project = Project.objects.create(name="Resources")
    make_user("viewer", project=project, role=Role.VIEWER)
    host = trusted_host(tls_engine, project, name="photon-resources")
    busybox = next(ref for ref in tls_engine["images"] if ref.startswith("lab/busybox"))
    history.forget(host.pk, history.HOST)  # a host of an earlier run's database had this id
    server = daphne_factory("daphne-resources")
    name = f"spin-{uuid.uuid4().hex[:6]}"
    with closing(engines.connect(tls_engine)) as sdk:
        spin = sdk.containers.run(
            busybox, ["sh", "-c", "while :; do :; done"], name=name, detach=True, network_mode="none"
        )
    try:
        page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
        sign_in(page, server.url, "viewer")
        page.goto(f"{server.url}/hosts/{host.pk}/")
        first = page.locator("#top-containers tr.top-container").first
        expect(first.locator("a")).to_have_text(name, timeout=30_000)
        expect(first.locator("a")).to_have_attribute("href", f"/hosts/{host.pk}/containers/{spin.id[:12]}/")
        expect(page.locator("#resources")).to_have_attribute(
            "data-samples", re.compile(r"[1-9]\d*"), timeout=30_000
        )
        expect(page.locator("#resources-cpu canvas")).to_have_count(1)
        page.locator("#resources").scroll_into_view_if_needed()
        screenshot(page, "host-resources")

        page.goto(f"{server.url}/hosts/{host.pk}/containers/{spin.id}/")
        expect(page.locator("#resources-io canvas")).to_have_count(1)
        expect(page.locator("#resources")).not_to_have_attribute("data-topic", "")
    finally:
        spin.remove(force=True)
