"""README.md's "Ten minutes with the lab", followed in the browser (issue 14's acceptance).

The lab is brought up whole and registered as `make lab` does it; from there on every step
is a click in the portal, first as the Admin, then as a Provisioner the Admin made: no
Django admin, no command line. A screenshot per step goes to var/screenshots/. The second
test opens every page the walkthrough visits in an 800 px wide window and checks that
nothing is wider than the window.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Page, expect

from hosts.changes import planning
from hosts.models import Host, HostStatus, ProvisionRequest, VirtualMachine
from hosts.models.changes import Change, Profile
from hosts.models.vsphere import PowerState
from portal.models import Project
from registry.models import Registry
from tests.changes.conftest import lab_run
from tests.e2e.test_sign_in_and_live_activity import sign_in
from tests.lab import __main__ as lab_cli
from tests.lab import engines, images
from tests.lab.fixtures import start
from tests.lab.register import register
from tests.threads import closing_connections

pytestmark = pytest.mark.lab
T = TypeVar("T")

APP = "walkthrough-app"
#: What the firewall step opens (and the drift step closes behind the portal's back).
PORT_RULE = "-A INPUT -p tcp -m tcp --dport 8080 -j ACCEPT"


@pytest.fixture(scope="module")
def whole_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A lab of its own, as `make lab` starts it: the walkthrough changes its hosts, pushes
    to its registry and deploys to its engine, which the shared lab must not see."""
    root = tmp_path_factory.mktemp("walkthrough") / "lab"
    yield start(lambda: lab_cli.up(root, hosts=2, vms=20, templates=1, repos=10))
    lab_cli.down(root)


def off_the_browsers_loop(function: Callable[..., T], *args: Any) -> T:
    """Run ``function`` on a thread of its own: Playwright's sync API keeps an event loop
    running in this one, and the portal's SSH work starts loops of its own (asyncio.run).
    Its database connection is closed when it is done (tests.threads)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(closing_connections(function), *args).result()


@pytest.fixture
def registered(
    whole_lab: dict[str, Any], transactional_db: None, make_user: Any, celery_worker_if_brokered: None
) -> dict[str, Any]:
    """`make lab`'s second half, into the test database; the Admin exists first (with the
    tests' password), as `make run` would have made one."""
    make_user("admin", admin=True)
    off_the_browsers_loop(register, whole_lab)
    return whole_lab


class Walk:
    """The browser's path: a screenshot per step, and every page it saw."""

    def __init__(self, page: Page, screenshot: Any) -> None:
        self.page, self.screenshot = page, screenshot
        self.visited: list[str] = []
        self.steps = 0

    def step(self, name: str, page: Page | None = None) -> None:
        page = page or self.page
        self.steps += 1
        self.screenshot(page, f"{self.steps:02d}-{name}")
        path = re.sub(r"^https?://[^/]+", "", page.url)
        if path not in self.visited:
            self.visited.append(path)


def live(page: Page) -> None:
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=15000)


@pytest.mark.timeout(900)
def test_ten_minutes_with_the_lab_as_the_admin_then_a_provisioner(
    registered: dict[str, Any], daphne_factory: Any, browser: Any, screenshot: Any
) -> None:
    lab = registered
    server = daphne_factory("daphne-walkthrough", watchers=True)
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    walk = Walk(page, screenshot)
    tls_engine = next(e for e in lab["docker"] if e["tls"])
    photon = lab["hosts"][0]

    # Sign in: the dashboard shows every lab host ON and the one first step left.
    sign_in(page, server.url, "admin")
    expect(page.locator("h2")).to_have_text("Dashboard")
    live(page)
    hosts_card = page.locator("#card-hosts")
    total = len(lab["docker"]) + len(lab["hosts"])
    expect(hosts_card.locator('[data-count="total"]')).to_have_text(str(total))
    expect(hosts_card.locator('[data-count="on"]')).to_have_text(str(total), timeout=60000)
    expect(page.locator("#first-steps")).to_contain_text("Add people to a project")
    walk.step("dashboard")

    # 1. Hosts: every one ON; a Photon host reached over TLS with the portal's CA.
    page.click(".header-nav >> text=Hosts")
    rows = page.locator(".host-row")
    expect(rows).to_have_count(total)
    for i in range(total):
        expect(rows.nth(i)).to_have_attribute("data-status", HostStatus.ON, timeout=30000)
    walk.step("hosts")
    page.click(f'.host-row a:text-is("{photon["name"]}")')
    expect(page.locator("h2")).to_contain_text(str(photon["name"]))
    expect(page.locator("body")).to_contain_text(f"tcp://{photon['address']}:2376")
    walk.step("photon-host")

    # 2. Registries: the anonymous registry's busybox, deployed to the TLS engine.
    page.click(".header-nav >> text=Registries")
    page.click("#registries >> text=Lab anonymous")
    page.fill(".content-area input[name=q]", "lab/busybox")
    page.press(".content-area input[name=q]", "Enter")
    page.click("#repositories >> text=lab/busybox")
    tag = images.busybox_version()
    page.click(f'#tags a:text-is("{tag}")')
    expect(page.locator("#tag-summary")).to_contain_text("sha256:")
    walk.step("registry-tag")
    tls_host = Host.objects.get(name=f"lab-{tls_engine['name']}")
    page.select_option("#deploy-form select[name=host]", str(tls_host.pk))
    page.click("#deploy-form >> text=Deploy…")
    expect(page.locator("#id_image")).to_have_value(re.compile(r"/lab/busybox:"))
    live(page)
    page.fill("#id_name", APP)
    page.fill("#id_command", "sleep 3600")
    page.select_option("#id_network", "none")
    page.locator("#deploy-form").locator("button[type=submit]").click()
    expect(page.locator("#deploy-progress .deploy-done")).to_have_attribute(
        "data-level", "success", timeout=90000
    )
    walk.step("deployed")
    with closing(engines.connect(tls_engine)) as sdk:
        assert sdk.containers.get(APP).status == "running"

    # 3. Changes: a profile opening tcp/8080 on the Photon host, planned and applied.
    page.click(".header-nav >> text=Changes")
    page.click("#new-profile")
    page.fill("#id_name", "web")
    page.fill("#id_open_ports", "tcp/8080")
    photon_host = Host.objects.get(name=photon["name"])
    page.select_option("#id_hosts", str(photon_host.pk))
    page.click("#save-profile")
    profile = Profile.objects.get(name="web")
    page.goto(server.url + "/hosts/changes/")
    page.click(f"#profile-{profile.pk} .plan-button")
    run = page.locator(f'.run[data-host="{photon["name"]}"]')
    expect(run).to_have_attribute("data-state", "planned", timeout=60000)
    expect(run.locator("pre.diff")).to_contain_text("dport 8080")
    walk.step("planned")
    page.check("#confirm")
    page.click("#apply")
    expect(run).to_have_attribute("data-state", "applied", timeout=90000)
    walk.step("applied")
    assert PORT_RULE in lab_run(photon, "cat /etc/systemd/scripts/ip4save")

    # 4. Drift: the rule removed behind the portal's back is found and brought back.
    lab_run(photon, "sed -i '/dport 8080/d' /etc/systemd/scripts/ip4save")
    page.goto(server.url + "/hosts/changes/")
    live(page)
    page.click("#check-drift")
    drift_row = page.locator(".drift-row", has_text="web")
    expect(drift_row).to_have_attribute("data-state", "drifted", timeout=60000)
    walk.step("drifted")
    # Bringing it back is a change of its own: planned, then applied like any other.
    drift_row.locator(".drift-fix").click()
    page.wait_for_url(re.compile(r"/hosts/changes/\d+/$"))
    repair = page.locator(f'.run[data-host="{photon["name"]}"]')
    expect(repair).to_have_attribute("data-state", "planned", timeout=60000)
    expect(repair.locator("pre.diff")).to_contain_text("dport 8080")
    page.check("#confirm")
    page.click("#apply")
    expect(repair).to_have_attribute("data-state", "applied", timeout=90000)
    page.goto(server.url + "/hosts/changes/")
    expect(page.locator(".drift-row", has_text="web")).to_have_attribute(
        "data-state", "in_sync", timeout=120000
    )
    walk.step("repaired")
    assert PORT_RULE in lab_run(photon, "cat /etc/systemd/scripts/ip4save")

    # 5. vSphere: a Photon VM powered off (asked first) and on again, the task followed live.
    vm = (
        VirtualMachine.objects.filter(is_photon=True, is_template=False, power_state=PowerState.ON)
        .exclude(name__contains="<")
        .order_by("name")
        .first()
    )
    assert vm is not None
    page.click(".header-nav >> text=vSphere")
    page.fill(".content-area input[name=q]", vm.name)
    page.press(".content-area input[name=q]", "Enter")
    page.click(f'a:text-is("{vm.name}")')
    expect(page.locator("#action-power_on")).to_be_disabled()  # it is on already: says why
    page.click("#action-power_off")
    page.click("#confirm-action")
    summary = page.locator(f"#vm-summary-{vm.pk} .power-label")
    expect(summary).to_have_text("Off", timeout=30000)
    walk.step("vm-off")
    page.click("#action-power_on")
    expect(summary).to_have_text("On", timeout=30000)
    walk.step("vm-on")

    # 6. Provisioning: a new host from the Photon template, cloned and waiting to enroll.
    page.click(".header-nav >> text=Provisioning")
    page.click("#provision-new")
    lab_project = Project.objects.get(name="Lab")
    page.select_option("#id_project", str(lab_project.pk))
    template = VirtualMachine.objects.get(name="photon-5-template-1")
    page.select_option("#id_template", str(template.pk))
    with page.expect_response(lambda r: "/hosts/provision/new/?" in r.url):
        page.select_option("#id_datacenter", label="DC0")
    page.select_option("#id_network", label="VM Network")
    page.fill("#id_cpus", "1")
    page.fill("#id_memory_mb", "512")
    page.fill("#id_name_pattern", "walk-{n}")
    walk.step("provision-form")
    page.click("#provision-submit")
    page.wait_for_url("**/hosts/provision/*/")
    expect(page.locator(".provision-vm").first).to_have_attribute("data-state", "waiting", timeout=90000)
    walk.step("provision-waiting")

    # 7. People: a Provisioner made in the portal, who then signs in and plans a change
    # that waits for the Admin's approval (the header's badge counts it, live).
    page.click(".subnav >> text=Projects")
    page.click('.content-area table a:text-is("Lab")')
    page.fill("#id_username", "prov")
    page.select_option("#id_role", "provisioner")
    page.click("#add-member ~ form >> text=Add")
    page.click("text=Create prov and add them")
    link = page.locator("#person-created code.secret-once").inner_text()
    assert link.startswith(server.url + "/accounts/password/")
    walk.step("person-created")
    expect(page.locator("#first-steps")).to_have_count(0)  # every first step done now
    page.goto(server.url + "/")
    expect(page.locator("#first-steps")).to_have_count(0)
    live(page)
    badge = page.locator("#badge-approvals")
    expect(badge).to_have_text("0")

    # The new person opens the link they were sent, chooses a password, then signs in with it.
    provisioner = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    provisioner.goto(link)
    password = "prov-chose-this-one-42"
    provisioner.fill("#id_new_password1", password)
    provisioner.fill("#id_new_password2", password)
    provisioner.click("button:text-is('Set password')")
    provisioner.wait_for_url("**/accounts/login/**")
    sign_in(provisioner, server.url, "prov", password)
    expect(provisioner.locator("h2")).to_have_text("Dashboard")
    expect(provisioner.locator("body")).to_contain_text("Lab")
    provisioner.click(".header-nav >> text=Changes")
    provisioner.click("#new-profile")
    provisioner.fill("#id_name", "keepalive")
    provisioner.fill("#id_client_alive_interval", "120")
    provisioner.select_option("#id_hosts", str(photon_host.pk))
    provisioner.click("#save-profile")
    keepalive = Profile.objects.get(name="keepalive")
    provisioner.goto(server.url + "/hosts/changes/")
    provisioner.click(f"#profile-{keepalive.pk} .plan-button")
    expect(provisioner.locator("#change-status")).to_have_text("Awaiting approval", timeout=60000)
    walk.step("provisioner-plan", provisioner)
    expect(badge).to_have_text("1", timeout=15000)
    walk.step("approval-badge")
    provisioner.context.close()

    with closing(engines.connect(tls_engine)) as sdk:
        sdk.containers.get(APP).remove(force=True)
    assert walk.steps >= 15


def _too_wide(page: Page) -> dict[str, Any]:
    """What sticks out of the window: the page's own scroll width, and any element wider
    than the window that no scrolling container holds."""
    return page.evaluate(
        """() => {
          const width = document.documentElement.clientWidth;
          const held = (el) => {
            for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
              const overflow = getComputedStyle(p).overflowX;
              if (overflow === "auto" || overflow === "scroll" || overflow === "hidden") return true;
            }
            return false;
          };
          const wide = [];
          for (const el of document.body.querySelectorAll("*")) {
            const box = el.getBoundingClientRect();
            if (box.width === 0 || held(el)) continue;
            if (box.right > width + 1 || box.left < -1) {
              wide.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className} ${Math.round(box.width)}px`);
            }
          }
          return { scroll: document.documentElement.scrollWidth, width, wide: wide.slice(0, 8) };
        }"""
    )


@pytest.mark.timeout(600)
def test_every_walkthrough_page_fits_an_800px_window(
    registered: dict[str, Any], daphne_factory: Any, browser: Any, screenshot: Any
) -> None:
    lab = registered
    photon = Host.objects.get(name=lab["hosts"][0]["name"])
    profile = Profile.objects.get(name="Docker remote API")
    change = Change.objects.filter(profile=profile).first()
    assert change is not None
    admin = change.created_by
    # A change with long diffs (a certificate in it) and a run card, as the Changes step shows.
    off_the_browsers_loop(planning.plan, planning.profile_change(profile, admin), [photon])
    anonymous = Registry.objects.get(name="Lab anonymous")
    harbor = Registry.objects.get(name="Lab harbor")
    vm = VirtualMachine.objects.filter(is_photon=True, is_template=False).order_by("name").first()
    assert vm is not None
    project = Project.objects.get(name="Lab")
    request = ProvisionRequest.objects.first()
    pages = [
        "/",
        "/hosts/",
        f"/hosts/{photon.pk}/",
        "/registries/",
        f"/registries/{anonymous.pk}/",
        f"/registries/{anonymous.pk}/r/lab/busybox/",
        f"/registries/{anonymous.pk}/r/lab/busybox/-/tags/{images.busybox_version()}/",
        f"/registries/{harbor.pk}/",
        "/hosts/changes/",
        f"/hosts/changes/{change.pk}/",
        f"/hosts/changes/profiles/{profile.pk}/",
        "/hosts/vsphere/",
        "/hosts/vsphere/vcenters/",
        f"/hosts/vsphere/vms/{vm.pk}/",
        "/hosts/provision/",
        "/hosts/provision/new/",
        "/hosts/provision/quotas/",
        "/projects/",
        f"/projects/{project.pk}/",
        "/work/",
        "/work/approvals/",
        "/audit/",
        "/events/",
        "/account/tokens/",
        "/api/docs/",
    ]
    if request is not None:
        pages.append(f"/hosts/provision/{request.pk}/")
    server = daphne_factory("daphne-800")
    page = browser.new_context(viewport={"width": 800, "height": 900}).new_page()
    sign_in(page, server.url, "admin")
    expect(page.locator("h2")).to_have_text("Dashboard")
    problems = {}
    for path in pages:
        response = page.goto(server.url + path)
        assert response is not None and response.status == 200, path
        page.wait_for_load_state("networkidle")
        found = _too_wide(page)
        if found["scroll"] > found["width"] or found["wide"]:
            problems[path] = found
            screenshot(page, "800-" + re.sub(r"\W+", "-", path).strip("-"))
        # Sign out stays in reach: the header wraps instead of cutting it off.
        signout = page.locator("text=Sign out")
        box = signout.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 800, path
    assert problems == {}
