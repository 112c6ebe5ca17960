"""My work: my projects and role, what I can use, and my requests (All / Running /
Failed), their progress live on my own topic."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client
from pyVim.task import WaitForTask

from hosts.models import Change, Deploy, Host, Profile, VCenter, VirtualMachine, VmTask
from hosts.vsphere import client as vsphere
from hosts.vsphere import links as vsphere_links
from hosts.vsphere import sync as vsphere_sync
from hosts.vsphere import tasks as vsphere_tasks
from portal.asgi import application
from portal.models import Project, Role
from registry.models import Registry
from tests.conftest import session_cookie
from tests.threads import orm_in_thread
from tests.vsphere.conftest import add_vcenter, find_vm, outside  # noqa: F401 -- fixture reused

pytestmark = pytest.mark.django_db(transaction=True)


async def next_event(ws: WebsocketCommunicator, timeout: float = 30) -> dict[str, Any]:
    """The next live event, waiting up to ``timeout``.

    Tasks publish from other threads; the embedded in-memory channel layer does not
    wake this loop for them, so the wait wakes it often (receive_nothing) until an
    event is there or the deadline passes.
    """
    deadline = time.monotonic() + timeout
    while await ws.receive_nothing(timeout=0.2, interval=0.05):
        if time.monotonic() > deadline:
            raise AssertionError(f"no live event within {timeout} s")
    return await ws.receive_json_from(timeout=5)


@pytest.fixture
def world(make_user) -> dict[str, Any]:
    fleet = Project.objects.create(name="fleet")
    web = Project.objects.create(name="web")
    secret = Project.objects.create(name="secret")
    prov = make_user("prov", project=fleet, role=Role.PROVISIONER)
    from portal.models import Membership

    Membership.objects.create(user=prov, project=web, role=Role.VIEWER)
    # Names, not addresses: the lab's VMs link to hosts by address.
    hosts = {
        "fleet": Host.objects.create(project=fleet, name="fleet-host", docker_url="tcp://fleet.invalid:2376"),
        "web": Host.objects.create(project=web, name="web-host", docker_url="tcp://web.invalid:2376"),
        "secret": Host.objects.create(
            project=secret, name="secret-host", docker_url="tcp://secret.invalid:2376"
        ),
    }
    shared = Registry.objects.create(name="shared-registry", url="https://registry.example")
    shared.projects.add(fleet)
    Registry.objects.create(name="secret-registry", url="https://secret.example").projects.add(secret)
    Profile.objects.create(project=fleet, name="hardened", settings={"sshd": {"MaxAuthTries": 3}})
    Profile.objects.create(project=web, name="web-profile", settings={"sshd": {"MaxAuthTries": 3}})
    Profile.objects.create(project=secret, name="secret-profile", settings={"sshd": {"MaxAuthTries": 3}})
    return {"fleet": fleet, "web": web, "secret": secret, "prov": prov, "hosts": hosts}


def test_my_projects_roles_and_what_i_can_use(client, world) -> None:
    client.force_login(world["prov"])
    html = client.get("/work/").content.decode()
    assert 'data-project="fleet"' in html and 'data-project="web"' in html and "secret" not in html
    assert "Provisioner" in html and "Viewer" in html
    # Hosts I can act on (Provisioner in fleet), not the ones I only see; profiles I can plan with.
    assert "fleet-host" in html and "web-host" not in html
    assert "hardened" in html and "web-profile" not in html
    assert "shared-registry" in html
    assert 'id="approvals-link"' not in html  # no project to approve in


def test_my_work_is_in_the_header_for_everyone(client, make_user) -> None:
    client.force_login(make_user("newcomer"))
    html = client.get("/work/").content.decode()
    assert 'href="/work/"' in html and "You belong to no project yet" in html and "No requests." in html


def test_my_requests_all_running_failed(client, world, make_user) -> None:
    prov, fleet, secret = world["prov"], world["fleet"], world["secret"]
    other = make_user("other", project=fleet, role=Role.PROVISIONER)
    waiting = Change.objects.create(
        project=fleet, title="waiting one", created_by=prov, status="awaiting_approval"
    )
    broken = Change.objects.create(project=fleet, title="broken one", created_by=prov, status="failed")
    done = Change.objects.create(project=fleet, title="done one", created_by=prov, status="applied")
    Change.objects.create(project=fleet, title="someone else's", created_by=other, status="applying")
    # Requests in a project I no longer belong to are not shown.
    Change.objects.create(project=secret, title="secret one", created_by=prov, status="failed")
    client.force_login(prov)
    # What the deploy service records: the request for a deploy.
    Deploy.objects.create(
        host=world["hosts"]["fleet"], actor=prov, token="t", spec={"image": "busybox:<b>1</b>", "name": "web"}
    )

    html = client.get("/work/").content.decode()
    for change in (waiting, broken, done):
        assert f'id="request-change-{change.pk}"' in html
    assert "someone else" not in html and "secret one" not in html
    assert 'data-kind="deploy"' in html and "busybox:&lt;b&gt;1&lt;/b&gt; as web" in html

    running = client.get("/work/?view=running").content.decode()
    assert f"request-change-{waiting.pk}" in running
    assert f"request-change-{broken.pk}" not in running and f"request-change-{done.pk}" not in running
    assert 'data-live-accept="[data-bucket=running]"' in running
    failed = client.get("/work/?view=failed").content.decode()
    assert f"request-change-{broken.pk}" in failed and f"request-change-{waiting.pk}" not in failed
    assert client.get("/work/?view=<nonsense>").status_code == 200  # an unknown view is All


def test_my_work_costs_a_bounded_number_of_queries(client, world, django_assert_max_num_queries) -> None:
    prov = world["prov"]
    for n in range(30):
        Change.objects.create(project=world["fleet"], title=f"change {n}", created_by=prov, status="failed")
    client.force_login(prov)
    client.get("/work/")
    with django_assert_max_num_queries(20):
        assert client.get("/work/").status_code == 200


# -- a VM action's progress, live, against the lab's vcsim ----------------------------------------------


@pytest.fixture
def lab_vc(lab_vcenter: dict[str, Any], world) -> VCenter:
    return add_vcenter(lab_vcenter)


@pytest.fixture
def photon_vm(lab_vc, world) -> VirtualMachine:
    """The lab's Photon VM 'photon-ü-01' linked to a host of project 'fleet'."""
    with vsphere.session(lab_vc) as si:
        vsphere_sync.sync(lab_vc, si)
    vm = VirtualMachine.objects.get(vcenter=lab_vc, name="photon-ü-01")
    host = Host.objects.create(project=world["fleet"], name="ü", docker_url=f"tcp://{vm.ip_address}:2376")
    # An Admin confirms the VM is that host (the sync links by provisioning's proof only).
    vsphere_links.link_vm(vm, host, actor=None)
    vm.refresh_from_db()
    assert vm.host is not None
    return vm


@pytest.mark.lab
def test_a_vm_action_reaches_my_work_live(world, photon_vm, outside) -> None:  # noqa: F811
    prov = world["prov"]
    WaitForTask(find_vm(outside, photon_vm.name).PowerOffVM_Task())
    cookie = session_cookie(Client(), prov)
    task = VmTask.objects.create(vm=photon_vm, action="power_on", actor=prov)

    async def scenario() -> list[dict[str, Any]]:
        ws = WebsocketCommunicator(
            application,
            "/ws/live/",
            headers=[
                (b"host", b"127.0.0.1"),
                (b"origin", b"http://127.0.0.1"),
                (b"cookie", f"sessionid={cookie}".encode()),
            ],
        )
        assert (await ws.connect(timeout=10))[0]
        await ws.send_json_to({"subscribe": [f"requests:user:{prov.pk}"]})
        assert (await ws.receive_json_from(timeout=5))["refused"] == []
        assert await orm_in_thread(vsphere_tasks.run_vm_action, task.pk) == "success"
        seen = []
        while not seen or seen[-1]["data"].get("state") != "success":
            seen.append(await next_event(ws))
        await ws.disconnect()
        return seen

    events = asyncio.run(scenario())
    assert all(f'id="request-vm-{task.pk}"' in e["html"] for e in events)
    assert 'data-bucket="done"' in events[-1]["html"] and "Succeeded" in events[-1]["html"]

    client = Client()
    client.force_login(prov)
    html = client.get("/work/").content.decode()
    assert f'id="request-vm-{task.pk}"' in html and "power_on photon-ü-01" in html


# -- a deploy's outcome, against the lab's TLS engine ---------------------------------------------------


@pytest.mark.lab
@pytest.mark.timeout(120)
def test_a_deploy_and_how_it_ended_show_on_my_work(
    client, world, lab_engines, monkeypatch, celery_worker_if_brokered
) -> None:
    from hosts.models import Host as HostModel
    from portal.models import AuditEntry
    from tests.hosts.conftest import trusted_host
    from tests.lab import engines
    from tests.lab.common import wait_until

    # The machine's CA bundle variables must not be what makes TLS work (see tests/hosts/conftest.py).
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(name, "/etc/ssl/certs/ca-certificates.crt")
    engine_info = next(e for e in lab_engines if e["tls"])
    host: HostModel = trusted_host(engine_info, world["fleet"], name="deploy-target")
    image = next(ref for ref in engine_info["images"] if ref.startswith("lab/busybox"))
    prov = world["prov"]
    client.force_login(prov)

    def deploy() -> Deploy:
        page = client.get(f"/hosts/{host.pk}/deploy/").content.decode()
        token = page.split('name="token" value="', 1)[1].split('"', 1)[0]
        data = {
            "image": image,
            "name": "my-work-deployed",
            "command": "sleep 3600",
            "restart_policy": "no",
            "network": "none",
            "token": token,
        }
        assert client.post(f"/hosts/{host.pk}/deploy/", data).status_code == 200
        wait_until(
            lambda: AuditEntry.objects.filter(action="container.deploy_result", after__token=token).exists(),
            timeout=60,
            what="the deploy's outcome",
        )
        return Deploy.objects.get(token=token)

    cookie = session_cookie(Client(), prov)

    async def watched_deploy() -> tuple[Deploy, list[dict[str, Any]]]:
        ws = WebsocketCommunicator(
            application,
            "/ws/live/",
            headers=[
                (b"host", b"127.0.0.1"),
                (b"origin", b"http://127.0.0.1"),
                (b"cookie", f"sessionid={cookie}".encode()),
            ],
        )
        assert (await ws.connect(timeout=10))[0]
        await ws.send_json_to({"subscribe": [f"requests:user:{prov.pk}"]})
        assert (await ws.receive_json_from(timeout=5))["refused"] == []
        entry = await orm_in_thread(deploy)
        seen = [await next_event(ws)]
        while seen[-1]["data"].get("status") == "running":
            seen.append(await next_event(ws))
        await ws.disconnect()
        return entry, seen

    try:
        ok, events = asyncio.run(watched_deploy())
        # Live: the row appears running, then says how it ended.
        assert [e["data"]["status"] for e in events] == ["running", "success"]
        assert all(f'id="request-deploy-{ok.pk}"' in e["html"] for e in events)
        clash = deploy()  # the same name again: the engine refuses
        html = client.get("/work/").content.decode()
        row_ok = html.split(f'id="request-deploy-{ok.pk}"', 1)[1].split("</tr>", 1)[0]
        assert 'data-bucket="done"' in row_ok and "Succeeded" in row_ok
        failed = client.get("/work/?view=failed").content.decode()
        assert f'id="request-deploy-{clash.pk}"' in failed and f"request-deploy-{ok.pk}" not in failed
        row_clash = failed.split(f'id="request-deploy-{clash.pk}"', 1)[1].split("</tr>", 1)[0]
        assert "Failed" in row_clash and "is already in use on this host" in row_clash  # the reason, told
        result = AuditEntry.objects.get(action="container.deploy_result", after__token=clash.token)
        assert result.actor == prov and result.project == world["fleet"]
    finally:
        from contextlib import closing

        with closing(engines.connect(engine_info)) as sdk:
            for c in sdk.containers.list(all=True, filters={"name": "my-work-deployed"}):
                c.remove(force=True)
