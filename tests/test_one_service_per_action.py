"""Every action is one service function that the UI and the API both call: for each, both
refuse the same case with the same sentence, and nothing is recorded or queued.

The refusals here need no peer (a disabled host's engine is never asked, a gone VM's
vCenter neither); the lab tests of the same actions cover what happens when they run.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from hosts.models import Host, VCenter, VirtualMachine, VmTask
from portal.models import AuditEntry, Project, Role
from tests.api.common import client_for

pytestmark = pytest.mark.django_db

CONTAINER = "a" * 64


@pytest.fixture
def project(db: None) -> Project:
    return Project.objects.create(name="Team A")


@pytest.fixture
def provisioner(make_user, project: Project) -> Any:  # type: ignore[no-untyped-def]
    return make_user("prov", project=project, role=Role.PROVISIONER)


@pytest.fixture
def disabled_host(project: Project) -> Host:
    # Port 9 (discard): were the engine asked, the test would see a connection error instead.
    return Host.objects.create(
        project=project, name="photon-off", docker_url="tcp://127.0.0.1:9", enabled=False
    )


def _browser(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _nothing_recorded() -> bool:
    return not AuditEntry.objects.filter(action__startswith="container.").exists()


@pytest.mark.parametrize("action", ["start", "stop", "restart"])
def test_a_container_action_on_a_disabled_host_is_refused_alike(
    provisioner: Any, disabled_host: Host, action: str
) -> None:
    said = f"Host {disabled_host.name} is disabled: enable it first."
    ui = _browser(provisioner).post(f"/hosts/{disabled_host.pk}/containers/{CONTAINER}/{action}/")
    api = client_for(provisioner).post(f"/api/hosts/{disabled_host.pk}/containers/{CONTAINER}/{action}/")
    assert (ui.status_code, api.status_code) == (409, 409)
    assert said in ui.content.decode() and 'class="label label-danger' in ui.content.decode()
    assert api.json() == {"detail": said}
    assert _nothing_recorded()


def test_removing_a_container_of_a_disabled_host_is_refused_alike(
    provisioner: Any, disabled_host: Host
) -> None:
    said = f"Host {disabled_host.name} is disabled: enable it first."
    browser = _browser(provisioner)
    ui = browser.post(f"/hosts/{disabled_host.pk}/containers/{CONTAINER}/remove/", follow=True)
    api = client_for(provisioner).delete(f"/api/hosts/{disabled_host.pk}/containers/{CONTAINER}/")
    assert said in [str(m) for m in ui.context["messages"]]
    assert api.status_code == 409 and api.json() == {"detail": said}
    assert _nothing_recorded()


def test_a_malformed_container_id_is_no_container_to_both(provisioner: Any, disabled_host: Host) -> None:
    ui = _browser(provisioner).post(f"/hosts/{disabled_host.pk}/containers/not-hex/stop/")
    api = client_for(provisioner).post(f"/api/hosts/{disabled_host.pk}/containers/not-hex/stop/")
    assert (ui.status_code, api.status_code) == (404, 404)


def test_another_projects_member_finds_no_host_through_either(make_user, disabled_host: Host) -> None:  # type: ignore[no-untyped-def]
    other = Project.objects.create(name="Team B")
    stranger = make_user("stranger", project=other, role=Role.PROJECT_ADMIN)
    ui = _browser(stranger).post(f"/hosts/{disabled_host.pk}/containers/{CONTAINER}/stop/")
    api = client_for(stranger).post(f"/api/hosts/{disabled_host.pk}/containers/{CONTAINER}/stop/")
    assert (ui.status_code, api.status_code) == (404, 404)
    assert _nothing_recorded()


@pytest.fixture
def vm(project: Project) -> VirtualMachine:
    host = Host.objects.create(project=project, name="photon-vm", docker_url="tcp://127.0.0.1:9")
    vcenter = VCenter.objects.create(name="vc", url="https://127.0.0.1:9", username="u", password="p")
    snapshots = [{"moref": "snapshot-1", "name": "before"}]
    return VirtualMachine.objects.create(
        vcenter=vcenter, moref="vm-1", name="photon-vm", host=host, snapshots=snapshots
    )


def _vm_action(user: Any, vm: VirtualMachine, action: str, argument: str = "") -> tuple[Any, Any]:
    ui = _browser(user).post(
        f"/hosts/vsphere/vms/{vm.pk}/action/",
        {"action": action, "argument": argument, "confirmed": "yes"},
        HTTP_HX_REQUEST="true",
    )
    api = client_for(user).post(
        f"/api/vms/{vm.pk}/power/", {"action": action, "argument": argument, "confirm": True}, format="json"
    )
    return ui, api


def test_an_action_on_a_vm_gone_from_vcenter_is_refused_alike(provisioner: Any, vm: VirtualMachine) -> None:
    vm.gone = True
    vm.save(update_fields=["gone"])
    ui, api = _vm_action(provisioner, vm, "power_on")
    said = "This VM is gone from vCenter."
    assert (ui.status_code, api.status_code) == (409, 409)
    assert said in ui.content.decode() and api.json() == {"detail": said}
    assert not VmTask.objects.exists()


@pytest.mark.parametrize(
    ("action", "argument", "said"),
    [
        (
            "snapshot_create",
            "<b>",
            "A snapshot name is 1 to 80 characters, without < > or control characters.",
        ),
        ("snapshot_revert", "snapshot-404", "No such snapshot."),
    ],
)
def test_a_bad_snapshot_is_refused_alike(
    provisioner: Any, vm: VirtualMachine, action: str, argument: str, said: str
) -> None:
    ui, api = _vm_action(provisioner, vm, action, argument)
    assert (ui.status_code, api.status_code) == (400, 400)
    assert api.json() == {"argument": [said]}
    assert said.replace("<", "&lt;").replace(">", "&gt;") in ui.content.decode()
    assert not VmTask.objects.exists()


def test_a_destructive_vm_action_waits_for_its_confirmation_in_both(
    provisioner: Any, vm: VirtualMachine
) -> None:
    ui = _browser(provisioner).post(
        f"/hosts/vsphere/vms/{vm.pk}/action/", {"action": "power_off"}, HTTP_HX_REQUEST="true"
    )
    api = client_for(provisioner).post(f"/api/vms/{vm.pk}/power/", {"action": "power_off"}, format="json")
    assert ui.status_code == 200 and "Power off" in ui.content.decode()  # the UI asks to confirm
    assert api.status_code == 400 and api.json() == {"confirm": ["Power off needs confirm: true."]}
    assert not VmTask.objects.exists()


def test_planning_a_profile_without_hosts_is_refused_alike(provisioner: Any, project: Project) -> None:
    from hosts.models import Change, Profile

    profile = Profile.objects.create(
        project=project, name="hardening", settings={"sshd": {"MaxAuthTries": 3}}
    )
    said = "This profile has no hosts: assign hosts or tags first."
    ui = _browser(provisioner).post(f"/hosts/changes/profiles/{profile.pk}/plan/", follow=True)
    api = client_for(provisioner).post(f"/api/profiles/{profile.pk}/plan/", {}, format="json")
    assert said in [str(m) for m in ui.context["messages"]]
    assert api.status_code == 400 and api.json() == {"hosts": [said]}
    assert not Change.objects.exists()


def test_approving_a_change_that_waits_for_nothing_is_refused_alike(make_user, project: Project) -> None:  # type: ignore[no-untyped-def]
    from hosts.models import Change

    approver = make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    change = Change.objects.create(project=project, title="done already", status="applied")
    said = "this change is applied, not awaiting approval"
    ui = _browser(approver).post(f"/hosts/changes/{change.pk}/approve/", follow=True)
    api = client_for(approver).post(f"/api/changes/{change.pk}/approve/", {}, format="json")
    assert said in [str(m) for m in ui.context["messages"]]
    assert api.status_code == 409 and api.json() == {"detail": said}
    change.refresh_from_db()
    assert change.status == "applied" and change.approved_by is None
