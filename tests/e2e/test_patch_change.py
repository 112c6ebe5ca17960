"""Issue 19's flow in the browser: a Provisioner plans updates for a lab host from its Updates
card, reads the exact transition and submits it; a Project admin approves and applies it
(after a confirmation) and watches the host's row go to applied live, the change with it;
the host has the planned build afterwards."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from playwright.sync_api import expect

from hosts.models import PatchChange
from hosts.patches import status
from hosts.patches.records import Nevra
from portal.models import Project, Role
from tests.e2e.test_sign_in_and_live_activity import sign_in
from tests.patches.lab_packages import LabHost, host_for, rpm
from tests.threads import closing_connections

pytestmark = pytest.mark.lab

TOOLS_NEW = Nevra("photon-demo-tools", 0, "2.3", "2.ph5", "noarch")


def test_updates_are_planned_approved_and_applied_live(
    daphne_factory: Any,
    make_user: Any,
    browser: Any,
    screenshot: Any,
    lab_rpm: dict[str, Any],
    lab_hosts: list[LabHost],
    celery_worker_if_brokered: None,
    restored: Any,
) -> None:
    lab = lab_hosts[1]
    before = restored(lab)
    project = Project.objects.create(name="patching")
    host = host_for(lab, project)
    # Its own thread: Playwright keeps a loop running in this one, and the read runs one too.
    with ThreadPoolExecutor(max_workers=1) as pool:
        read = pool.submit(closing_connections(status.refresh_hosts), [host]).result()
    assert [r.error for r in read] == [""]
    make_user("prov", project=project, role=Role.PROVISIONER)
    make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    server = daphne_factory("daphne-patches")

    planner = browser.new_context().new_page()
    sign_in(planner, server.url, "prov")
    planner.goto(f"{server.url}/hosts/{host.pk}/")
    planner.locator("#patches-plan").click()
    expect(planner.locator(f'#patch-form input[name="hosts"][value="{host.pk}"]')).to_be_checked()
    planner.select_option("#patch-form select[name=kind]", "advisories")
    planner.fill("#patch-form input[name=advisories]", str(lab_rpm["bugfix_advisory"]))
    planner.click("#plan-patch")
    expect(planner.locator("#patch-status")).to_have_text("Planned")
    run = PatchChange.objects.get().runs.get()
    plan = planner.locator(f'#patch-plan-{run.pk} tr[data-package="photon-demo-tools"]')
    expect(plan).to_contain_text("2.3-1.ph5")
    expect(plan).to_contain_text("2.3-2.ph5")
    planner.click("#patch-submit")
    expect(planner.locator("#patch-status")).to_have_text("Awaiting approval")
    expect(planner.locator("#patch-approve")).to_have_count(0)
    change = PatchChange.objects.get()
    screenshot(planner, "submitted")

    approver = browser.new_context().new_page()
    sign_in(approver, server.url, "pa")
    approver.goto(f"{server.url}/hosts/updates/changes/{change.pk}/")
    approver.fill("#patch-actions input[name=comment]", "fine tonight")
    approver.click("#patch-approve")
    expect(approver.locator("#patch-status")).to_have_text("Approved")
    row = approver.locator(f"#patch-run-{change.runs.get().pk}")
    # Apply asks first; dismissed, nothing starts.
    approver.once("dialog", lambda dialog: dialog.dismiss())
    approver.click("#patch-apply")
    expect(approver.locator("#patch-status")).to_have_text("Approved")
    assert not change.runs.exclude(state="planned").exists()
    approver.once("dialog", lambda dialog: dialog.accept())
    with approver.expect_navigation():
        approver.click("#patch-apply")
    expect(approver.locator("#live-status")).to_have_attribute("data-state", "live")
    approver.evaluate("window.__notReloaded = true")
    # The host's row and the change's status move live, without a reload.
    expect(row).to_have_attribute("data-state", "applied", timeout=120000)
    expect(approver.locator("#patch-status")).to_have_text("Applied", timeout=30000)
    assert approver.evaluate("window.__notReloaded") is True
    screenshot(approver, "applied")
    after = rpm(lab)
    assert after - before == {TOOLS_NEW}
    for page in (planner, approver):
        page.context.close()
