"""A full sync reads the inventory in pages, upserts it in bulk and links Photon VMs to hosts."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hosts.models import Cluster, Datacenter, EsxHost, Host, VirtualMachine
from hosts.vsphere import client as vsphere
from hosts.vsphere import sync as vsphere_sync
from hosts.vsphere.client import inventory as vsphere_inventory
from portal.models import AuditEntry, Project
from tests.lab import vcenter
from tests.lab.fixtures import start
from tests.vsphere.conftest import add_vcenter

pytestmark = pytest.mark.django_db


class SoapCounter:
    """Counts every SOAP request a session sends, property collector or not."""

    def __init__(self, si: Any, before_send: dict[str, Callable[[], None]] | None = None) -> None:
        self.calls: list[str] = []
        stub = si._stub
        original = stub.SerializeRequest

        def counting(mo: Any, info: Any, args: Any) -> Any:
            self.calls.append(info.wsdlName)
            if before_send and info.wsdlName in before_send:
                before_send[info.wsdlName]()
            return original(mo, info, args)

        stub.SerializeRequest = counting

    def property_collector(self) -> int:
        return sum(name.endswith("PropertiesEx") for name in self.calls)


def test_full_sync_mirrors_the_inventory_in_a_constant_number_of_round_trips(lab_vc, lab_vcenter) -> None:
    with vsphere.session(lab_vc) as si:
        soap = SoapCounter(si)
        result = vsphere_sync.sync(lab_vc, si, page_size=1000)
        calls = list(soap.calls)
    m = lab_vcenter["vms"]
    assert result.vms == m == VirtualMachine.objects.filter(vcenter=lab_vc).count()
    # The folders, datacenter, clusters, hosts and datastore fit in the one page too.
    assert result.round_trips == soap.property_collector() == 1
    # The whole sync, every request included: no per-VM calls hiding anywhere.
    assert calls == [
        "RetrieveServiceContent",
        "Fetch",  # the custom field names
        "CreateContainerView",
        "RetrievePropertiesEx",
        "DestroyView",
    ]
    assert Datacenter.objects.filter(vcenter=lab_vc).count() == 1
    assert Cluster.objects.filter(vcenter=lab_vc, is_cluster=True).count() == 2
    assert EsxHost.objects.filter(vcenter=lab_vc).count() == 4
    vm = VirtualMachine.objects.filter(vcenter=lab_vc, is_photon=True).exclude(ip_address="").first()
    assert vm.esx_host.cluster == vm.cluster and vm.datacenter.name == "DC0"
    assert vm.ip_address in vm.ip_addresses and vm.guest_hostname and vm.cpus and vm.memory_mb
    assert vm.guest_full_name == "VMware Photon OS (64-bit)" and vm.tools_status == "guestToolsRunning"
    assert vm.folder == "vm" and vm.instance_uuid


@pytest.fixture(scope="module")
def larger_vcenter(tmp_path_factory: pytest.TempPathFactory) -> Any:
    workdir = tmp_path_factory.mktemp("vcenter-300")
    yield start(lambda: vcenter.up(workdir, vms=300, photon_share=0.3))
    vcenter.down(workdir)


@pytest.mark.parametrize("page_size", [10, 64, 250])
@pytest.mark.parametrize("which", ["lab_vcenter", "larger_vcenter"])
def test_round_trips_grow_with_vms_over_page_size_not_with_vms(
    request: pytest.FixtureRequest, which: str, page_size: int
) -> None:
    """The lab's vcsim pages like vCenter (maxObjects, then a token): a full sync of M VMs
    asks for ceil(objects / page size) pages, one request each, and nothing per VM."""
    info = request.getfixturevalue(which)
    vc = add_vcenter(info, name=which)
    with vsphere.session(vc) as si:
        soap = SoapCounter(si)
        result = vsphere_sync.sync(vc, si, page_size=page_size)
        calls = list(soap.calls)
    m = info["vms"]
    # Besides the VMs: folders, datacenter, clusters, ESXi hosts, datastore.
    others = 4 + 1 + 2 + 4 + 1
    pages = math.ceil((m + others) / page_size)
    assert result.vms == m == VirtualMachine.objects.filter(vcenter=vc, gone=False).count()
    assert result.round_trips == sum(c.endswith("PropertiesEx") for c in calls) == pages
    # O(M / page size): the VMs' pages plus the few the infrastructure takes, never one per VM.
    assert math.ceil(m / page_size) <= pages <= math.ceil(m / page_size) + math.ceil(others / page_size)
    assert calls == [
        "RetrieveServiceContent",
        "Fetch",
        "CreateContainerView",
        "RetrievePropertiesEx",
        *["ContinueRetrievePropertiesEx"] * (pages - 1),
        "DestroyView",
    ]


def test_an_abandoned_paged_read_is_cancelled(lab_vc) -> None:
    """A reader that stops early tells vCenter, which frees the rest of the result."""
    with vsphere.session(lab_vc) as si:
        soap = SoapCounter(si)
        with pytest.raises(RuntimeError):
            vsphere_inventory.read_inventory(si, page_size=10, on_page=_stop_after_two)
        assert soap.calls[3:] == [
            "RetrievePropertiesEx",
            "ContinueRetrievePropertiesEx",
            "CancelRetrievePropertiesEx",
            "DestroyView",
        ]


def _stop_after_two(pages: int) -> None:
    if pages == 2:
        raise RuntimeError("enough")


def test_a_second_sync_changes_nothing_and_duplicates_nothing(lab_vc) -> None:
    with vsphere.session(lab_vc) as si:
        first = vsphere_sync.sync(lab_vc, si)
        ids = set(VirtualMachine.objects.values_list("pk", flat=True))
        second = vsphere_sync.sync(lab_vc, si)
    assert len(first.created) == first.vms
    assert second.created == second.changed == second.gone == []
    assert set(VirtualMachine.objects.values_list("pk", flat=True)) == ids


def test_photon_vms_are_marked_and_names_stay_intact(lab_vc, lab_vcenter) -> None:
    with vsphere.session(lab_vc) as si:
        vsphere_sync.sync(lab_vc, si)
    photon = VirtualMachine.objects.filter(vcenter=lab_vc, is_photon=True)
    assert photon.count() == lab_vcenter["photon_vms"]
    assert set(lab_vcenter["awkward_names"]) <= set(photon.values_list("name", flat=True))
    off = photon.get(name=lab_vcenter["powered_off_photon"][0])
    assert off.power_state == "poweredOff" and off.ip_address == ""


def test_photon_vms_do_not_link_to_hosts_of_the_same_address_or_name(lab_vc) -> None:
    """Changed in issue 12: a name or an address is no proof of which host a VM is (the
    sync used to link on them, across projects); an Admin confirms such links instead."""
    project = Project.objects.create(name="fleet")
    Host.objects.create(project=project, name="a", docker_url="tcp://192.0.2.5:2376")
    Host.objects.create(project=project, name="b", docker_url="ssh://x", address="192.0.2.6")
    Host.objects.create(project=project, name="photon-0007", docker_url="tcp://example:2376")
    with vsphere.session(lab_vc) as si:
        result = vsphere_sync.sync(lab_vc, si)
    assert not VirtualMachine.objects.filter(host__isnull=False).exists()
    assert result.linked == [] and result.registered == []


def test_new_photon_vms_register_into_the_chosen_project(lab_vcenter) -> None:
    project = Project.objects.create(name="auto")
    vc = add_vcenter(lab_vcenter, auto_register_project=project)
    with vsphere.session(vc) as si:
        result = vsphere_sync.sync(vc, si)
        again = vsphere_sync.sync(vc, si)
    with_address = lab_vcenter["photon_vms"] - len(lab_vcenter["powered_off_photon"])
    assert len(result.registered) == Host.objects.filter(project=project).count() == with_address
    assert again.registered == []
    host = Host.objects.get(project=project, name='<script>alert("vm")</script>')
    assert host.docker_url == "tcp://192.0.2.1:2376" and host.address == "192.0.2.1"
    assert host.status == "unknown"
    audited = AuditEntry.objects.filter(action="vsphere.host_registered", project=project)
    assert audited.count() == with_address


def test_vms_gone_from_vcenter_are_marked_not_deleted(tmp_path: Path) -> None:
    info = start(lambda: vcenter.up(tmp_path, vms=8, photon_share=0.5))
    try:
        vc = add_vcenter(info)
        with vsphere.session(vc) as si:
            vsphere_sync.sync(vc, si)
            victim = VirtualMachine.objects.filter(vcenter=vc).order_by("moref").first()
            from pyVim.task import WaitForTask
            from pyVmomi import vim

            vm = vim.VirtualMachine(victim.moref, si._stub)
            if victim.power_state == "poweredOn":
                WaitForTask(vm.PowerOffVM_Task())
            WaitForTask(vm.Destroy_Task())
            result = vsphere_sync.sync(vc, si)
        victim.refresh_from_db()
        assert victim.gone and result.gone == [victim.pk]
        assert VirtualMachine.objects.filter(vcenter=vc, gone=False).count() == info["vms"] - 1
    finally:
        vcenter.down(tmp_path)


def test_vcenter_dying_in_the_middle_of_a_sync_keeps_the_last_good_state(tmp_path: Path) -> None:
    info = start(lambda: vcenter.up(tmp_path, vms=12, photon_share=0.5))
    try:
        vc = add_vcenter(info)
        with vsphere.session(vc) as si:
            vsphere_sync.sync(vc, si)
        before = sorted(VirtualMachine.objects.values_list("moref", "name", "power_state", "gone"))
        si = vsphere.connect(vc)
        soap = SoapCounter(si, before_send={"RetrievePropertiesEx": lambda: vcenter.down(tmp_path)})
        # Dies as the inventory is asked for, the container view already made.
        with pytest.raises(OSError):
            vsphere_sync.sync(vc, si)
        assert soap.calls[-3:] == ["CreateContainerView", "RetrievePropertiesEx", "DestroyView"]
        after = sorted(VirtualMachine.objects.values_list("moref", "name", "power_state", "gone"))
        assert after == before
    finally:
        vcenter.down(tmp_path)


def test_vcenter_dying_between_pages_keeps_the_last_good_state(tmp_path: Path) -> None:
    info = start(lambda: vcenter.up(tmp_path, vms=40, photon_share=0.5))
    try:
        vc = add_vcenter(info)
        with vsphere.session(vc) as si:
            vsphere_sync.sync(vc, si, page_size=10)
        before = sorted(VirtualMachine.objects.values_list("moref", "name", "power_state", "gone"))
        si = vsphere.connect(vc)
        soap = SoapCounter(si, before_send={"ContinueRetrievePropertiesEx": lambda: vcenter.down(tmp_path)})
        # Dies after the first page arrived: half a read is never written.
        with pytest.raises(OSError):
            vsphere_sync.sync(vc, si, page_size=10)
        assert soap.calls[-4:] == [
            "RetrievePropertiesEx",
            "ContinueRetrievePropertiesEx",
            "CancelRetrievePropertiesEx",
            "DestroyView",
        ]
        after = sorted(VirtualMachine.objects.values_list("moref", "name", "power_state", "gone"))
        assert after == before
    finally:
        vcenter.down(tmp_path)
