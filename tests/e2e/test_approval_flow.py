"""Issue 8's acceptance: a Provisioner plans a change, a Project admin sees it arrive
live in the approvals queue and approves it, the Provisioner watches it apply; both
find it in the audit trail. Through the browser, against a lab host."""

from __future__ import annotations

import base64

import pytest
from playwright.sync_api import expect

from hosts.models import Change, Profile
from portal.models import Project, Role
from tests.changes.conftest import host_for, lab_run
from tests.e2e.test_sign_in_and_live_activity import sign_in

pytestmark = pytest.mark.lab


def test_plan_arrives_live_is_approved_applies_and_is_audited(
    daphne_factory, make_user, browser, screenshot, lab_hosts, celery_worker_if_brokered
) -> None:
    lab = lab_hosts[1]
    original = lab_run(lab, "cat /etc/ssh/sshd_config")
    project = Project.objects.create(name="fleet")
    make_user("prov", project=project, role=Role.PROVISIONER)
    make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    host = host_for(lab, project, docker_url=f"ssh://root@{lab['address']}")
    profile = Profile.objects.create(
        project=project, name="keepalive", settings={"sshd": {"ClientAliveInterval": 120}}
    )
    profile.hosts.add(host)
    server = daphne_factory("daphne-approvals")
    try:
        # The Project admin has the queue open before anything is planned.
        approver = browser.new_context().new_page()
        sign_in(approver, server.url, "pa")
        approver.goto(server.url + "/work/approvals/")
        expect(approver.locator("#approval-queue")).to_contain_text("Nothing waits for your approval")
        expect(approver.locator("#live-status")).to_have_attribute("data-state", "live")
        approver.evaluate("window.__notReloaded = true")

        planner_context = browser.new_context()
        planner = planner_context.new_page()
        sign_in(planner, server.url, "prov")
        planner.goto(server.url + "/hosts/changes/")
        planner.click(f"#profile-{profile.pk} .plan-button")
        expect(planner.locator("#change-status")).to_have_text("Awaiting approval", timeout=30000)
        change = Change.objects.get(profile=profile)

        # My work, in a second tab: the request, waiting.
        work = planner_context.new_page()
        work.goto(server.url + "/work/")
        row = work.locator(f"#request-change-{change.pk}")
        expect(row).to_have_attribute("data-status", "awaiting_approval")
        expect(work.locator("#live-status")).to_have_attribute("data-state", "live")
        work.evaluate("window.__notReloaded = true")

        # It arrived in the queue over the websocket, with its diff.
        card = approver.locator(f"#approval-{change.pk}")
        expect(card).to_have_attribute("data-status", "awaiting_approval")
        expect(card.locator("pre.diff")).to_contain_text("+ClientAliveInterval 120")
        assert approver.evaluate("window.__notReloaded") is True
        screenshot(approver, "arrived")
        card.locator("textarea[name=comment]").fill("Keep-alives are fine, go ahead")
        card.locator("button.approve").click()
        expect(approver.locator(f"#approval-{change.pk}")).to_have_attribute("data-status", "approved")
        expect(approver.locator(f"#approval-{change.pk} .approval-form")).to_have_count(0)

        # The Provisioner sees the decision live, then applies and watches it finish.
        expect(row).to_have_attribute("data-status", "approved")
        expect(row.locator(".request-note")).to_have_text("approved by pa: Keep-alives are fine, go ahead")
        screenshot(work, "approved")
        planner.reload()
        planner.check("#confirm")
        planner.click("#apply")
        run = planner.locator(f'.run[data-host="{host.name}"]')
        expect(run).to_have_attribute("data-state", "applied", timeout=60000)
        expect(planner.locator("#change-status")).to_have_text("Applied")
        expect(row).to_have_attribute("data-status", "applied")
        expect(row).to_have_attribute("data-bucket", "done")
        assert work.evaluate("window.__notReloaded") is True
        screenshot(work, "applied")
        assert "clientaliveinterval 120" in lab_run(lab, "sshd -T").splitlines()

        # Both find it in the audit trail.
        for page in (planner, approver):
            page.goto(server.url + "/audit/")
            for action in ("change.plan", "change.approve", "change.apply"):
                expect(page.locator(f'tr.audit-row[data-action="{action}"]')).to_have_count(1)
        screenshot(planner, "audit")
        for page in (approver, planner):
            page.context.close()
    finally:
        encoded = base64.b64encode(original.encode()).decode()
        lab_run(lab, f"echo {encoded} | base64 -d > /etc/ssh/sshd_config && systemctl restart sshd")
    assert lab_run(lab, "cat /etc/ssh/sshd_config") == original
