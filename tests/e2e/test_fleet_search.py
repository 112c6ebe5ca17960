"""Find across the fleet in Chromium: the header's box leads to the search page, where the results
follow the words as they are typed (htmx, once typing pauses), with no submit and no reload, and
the address keeps the words. The inventory is filled as the engines watcher fills it; no engine."""

from __future__ import annotations

from django.utils import timezone
from playwright.sync_api import expect

from hosts.inventory import keeping, reading
from hosts.models import Host
from portal.models import Project, Role
from tests.e2e.test_sign_in_and_live_activity import sign_in


def test_the_results_follow_what_is_typed(daphne_factory, make_user, browser, screenshot) -> None:
    project = Project.objects.create(name="Shop")
    make_user("vera", project=project, role=Role.VIEWER)
    host = Host.objects.create(project=project, name="photon-7", docker_url="tcp://192.0.2.7:2376")
    containers = [
        reading.Seen(reading.CONTAINER, "a" * 64, "web-frontend", image="nginx:1.25", state="running"),
        reading.Seen(
            reading.CONTAINER, "b" * 64, "orders-db", image="postgres:16", labels={"tier": "backend"}
        ),
    ]
    keeping.store(host, {reading.CONTAINER: containers}, timezone.now())
    server = daphne_factory("daphne-e2e-search")

    page = browser.new_context().new_page()
    sign_in(page, server.url, "vera")
    page.fill("#fleet-search-box", "web")
    page.press("#fleet-search-box", "Enter")
    rows = page.locator("#search-results tr.found-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-name", "web-frontend")
    expect(rows.first).to_have_attribute("data-host", "photon-7")
    screenshot(page, "results")

    # Typed on the page: no Enter, and the page is the same page (no reload) once results swap.
    page.evaluate("window.__sameDocument = true")
    page.fill("#id_q", "tier=backend")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-name", "orders-db")
    page.fill("#id_q", "no-such-thing")
    expect(page.locator("#search-nothing")).to_be_visible()
    assert page.evaluate("window.__sameDocument") is True
    assert "q=no-such-thing" in page.url
    screenshot(page, "no-match")
