"""A Provisioner plans an sshd change, a Project admin approves and applies it and
watches it finish live, then reverts it: through the browser, against a lab host."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from hosts.models import Profile
from portal.models import Project, Role
from tests.changes.conftest import host_for, lab_run
from tests.e2e.test_sign_in_and_live_activity import sign_in

pytestmark = pytest.mark.lab


def test_plan_approve_apply_and_revert_an_sshd_change(
    daphne_factory, make_user, browser, screenshot, lab_hosts, celery_worker_if_brokered
) -> None:
    lab = lab_hosts[1]
    original = lab_run(lab, "cat /etc/ssh/sshd_config")
    project = Project.objects.create(name="fleet")
    make_user("prov", project=project, role=Role.PROVISIONER)
    make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    host = host_for(lab, project, docker_url=f"ssh://root@{lab['address']}")
    profile = Profile.objects.create(
        project=project, name="hardened", settings={"sshd": {"MaxAuthTries": 3, "ClientAliveInterval": 300}}
    )
    profile.hosts.add(host)
    server = daphne_factory("daphne-changes")

    planner = browser.new_context().new_page()
    sign_in(planner, server.url, "prov")
    planner.goto(server.url + "/hosts/changes/")
    planner.click(f"#profile-{profile.pk} .plan-button")
    run = planner.locator(f'.run[data-host="{host.name}"]')
    expect(run).to_have_attribute("data-state", "planned", timeout=30000)
    expect(run.locator("pre.diff")).to_contain_text("+MaxAuthTries 3")
    expect(planner.locator("#change-status")).to_have_text("Awaiting approval")
    expect(planner.locator("#apply")).to_have_count(0)
    screenshot(planner, "planned")
    change_url = planner.url

    approver = browser.new_context().new_page()
    sign_in(approver, server.url, "pa")
    approver.goto(change_url)
    expect(approver.locator(f'.run[data-host="{host.name}"] pre.diff')).to_contain_text("-MaxAuthTries 4")
    approver.click("#approve")
    expect(approver.locator("#change-status")).to_have_text("Approved")
    approver.check("#confirm")
    approver.click("#apply")
    # Progress arrives over the websocket: the page is not reloaded.
    approver.evaluate("window.__notReloaded = true")
    run = approver.locator(f'.run[data-host="{host.name}"]')
    expect(run).to_have_attribute("data-state", "applied", timeout=60000)
    expect(approver.locator("#change-status")).to_have_text("Applied")
    expect(approver.locator("#change-progress")).to_have_attribute("value", "100")
    assert approver.evaluate("window.__notReloaded") is True
    screenshot(approver, "applied")
    assert "maxauthtries 3" in lab_run(lab, "sshd -T").splitlines()

    approver.reload()
    approver.click("#revert")
    run = approver.locator(f'.run[data-host="{host.name}"]')
    expect(run).to_have_attribute("data-state", "planned", timeout=30000)
    expect(run.locator("pre.diff")).to_contain_text("-MaxAuthTries 3")
    approver.check("#confirm")
    approver.click("#apply")
    expect(approver.locator(f'.run[data-host="{host.name}"]')).to_have_attribute(
        "data-state", "applied", timeout=60000
    )
    screenshot(approver, "reverted")
    assert lab_run(lab, "cat /etc/ssh/sshd_config") == original
    for page in (planner, approver):
        page.context.close()
