"""A power action the VM's known power state makes pointless (power on while on, power off
while off...) is refused up front, alike by the UI and the API, and its button is shown
disabled saying why. No peer is needed: the refusal comes before vCenter is asked."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from hosts.models import Host, VCenter, VirtualMachine, VmTask
from hosts.models.vsphere import PowerState
from portal.models import Project, Role
from tests.api.common import client_for
from tests.queued import record_queued

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(db: None) -> Project:
    return Project.objects.create(name="Team A")


@pytest.fixture
def provisioner(make_user, project: Project) -> Any:  # type: ignore[no-untyped-def]
    return make_user("prov", project=project, role=Role.PROVISIONER)


def _vm(project: Project, power_state: str) -> VirtualMachine:
    # Port 9 (discard): were vCenter asked, the test would see a connection error instead.
    host = Host.objects.create(project=project, name="photon-vm", docker_url="tcp://127.0.0.1:9")
    vcenter = VCenter.objects.create(name="vc", url="https://127.0.0.1:9", username="u", password="p")
    return VirtualMachine.objects.create(
        vcenter=vcenter, moref="vm-1", name="photon-vm", host=host, power_state=power_state
    )


def _both(user: Any, vm: VirtualMachine, action: str) -> tuple[Any, Any]:
    browser = Client()
    browser.force_login(user)
    ui = browser.post(
        f"/hosts/vsphere/vms/{vm.pk}/action/",
        {"action": action, "confirmed": "yes"},
        HTTP_HX_REQUEST="true",
    )
    body = {"action": action, "confirm": True}
    api = client_for(user).post(f"/api/vms/{vm.pk}/power/", body, format="json")
    return ui, api


@pytest.mark.parametrize(
    ("state", "action", "said"),
    [
        (PowerState.ON, "power_on", "photon-vm is already powered on."),
        (PowerState.OFF, "power_off", "photon-vm is already powered off."),
        (PowerState.OFF, "shutdown_guest", "photon-vm is already powered off."),
        (
            PowerState.OFF,
            "reset",
            "photon-vm is powered off: there is nothing to reset; power it on instead.",
        ),
        (
            PowerState.SUSPENDED,
            "shutdown_guest",
            "photon-vm is suspended: its guest cannot shut down; power it on or off instead.",
        ),
    ],
)
def test_a_pointless_power_action_is_refused_alike(
    provisioner: Any, project: Project, state: str, action: str, said: str
) -> None:
    vm = _vm(project, state)
    ui, api = _both(provisioner, vm, action)
    assert (ui.status_code, api.status_code) == (409, 409)
    assert said in ui.content.decode() and 'class="alert alert-danger"' in ui.content.decode()
    assert api.json() == {"detail": said}
    assert not VmTask.objects.exists()


@pytest.mark.parametrize(
    ("state", "action"),
    [(PowerState.OFF, "power_on"), (PowerState.SUSPENDED, "power_on"), ("", "power_on"), ("", "power_off")],
)
def test_a_power_action_that_can_work_is_not_refused(
    provisioner: Any, project: Project, state: str, action: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown power state ("" before the first sync) refuses nothing: vCenter decides."""
    record_queued(monkeypatch)
    vm = _vm(project, state)
    browser = Client()
    browser.force_login(provisioner)
    answer = browser.post(
        f"/hosts/vsphere/vms/{vm.pk}/action/", {"action": action, "confirmed": "yes"}, HTTP_HX_REQUEST="true"
    )
    assert answer.status_code == 200 and "started." in answer.content.decode()
    assert VmTask.objects.get().action == action


def _button(html: str, action: str) -> str:
    found = re.search(rf'<button[^>]*id="action-{action}"[^>]*>', html)
    assert found, f"no button for {action}"
    return found.group(0)


def test_the_vm_page_disables_what_the_power_state_makes_pointless(
    provisioner: Any, project: Project
) -> None:
    vm = _vm(project, PowerState.ON)
    browser = Client()
    browser.force_login(provisioner)
    html = browser.get(f"/hosts/vsphere/vms/{vm.pk}/").content.decode()
    power_on = _button(html, "power_on")
    assert " disabled" in power_on and 'title="Already powered on"' in power_on
    for action in ("power_off", "reset", "shutdown_guest", "snapshot_create"):
        assert " disabled" not in _button(html, action) and "title=" not in _button(html, action)

    VirtualMachine.objects.filter(pk=vm.pk).update(power_state=PowerState.OFF)
    html = browser.get(f"/hosts/vsphere/vms/{vm.pk}/").content.decode()
    assert " disabled" not in _button(html, "power_on")
    assert 'title="Already powered off"' in _button(html, "power_off")
    assert 'title="Powered off: nothing to reset"' in _button(html, "reset")
    assert " disabled" in _button(html, "shutdown_guest")
