"""Where clones go: the form's datacenter, cluster / resource pool, folder, network and
datastore pickers, read live from the lab's vcsim, and the clone landing there."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.urls import reverse
from pyVmomi import vim

from hosts.models import ProvisionedVm, ProvisionRequest, VCenter
from hosts.provision import services as provision_services
from hosts.provision import tasks as provision_tasks
from hosts.provision.forms import ProvisionForm
from hosts.vsphere import client as vsphere
from hosts.vsphere import placement
from hosts.vsphere.client import collector as vsphere_collector
from tests.conftest import PASSWORD
from tests.provision.conftest import BASE_URL, photon_template
from tests.provision.test_clone import make_request, refused
from tests.provision.test_provision_views import form_data
from tests.queued import record_queued
from tests.vsphere.conftest import find_vm

pytestmark = pytest.mark.django_db


def _datacenter(si: vim.ServiceInstance) -> vim.Datacenter:
    return si.RetrieveContent().rootFolder.childEntity[0]


@pytest.fixture
def places(outside: vim.ServiceInstance) -> dict[str, Any]:
    """A resource pool and a nested folder of their own, made outside the portal."""
    dc = _datacenter(outside)
    suffix = uuid.uuid4().hex[:6]
    cluster = dc.hostFolder.childEntity[-1]
    allocation = vim.ResourceAllocationInfo(
        limit=-1, reservation=0, expandableReservation=True, shares=vim.SharesInfo(level="normal")
    )
    pool = cluster.resourcePool.CreateResourcePool(
        f"dev-{suffix}", vim.ResourceConfigSpec(cpuAllocation=allocation, memoryAllocation=allocation)
    )
    folder = dc.vmFolder.CreateFolder(f"web-{suffix}").CreateFolder("prod")
    network = next(n for n in dc.network if n.name == "VM Network")
    return {
        "dc": dc,
        "cluster": cluster,
        "pool": pool,
        "folder": folder,
        "network": network,
        "suffix": suffix,
    }


def test_the_placement_is_read_in_one_round_trip(synced_vc, places) -> None:
    counter = vsphere_collector.Counter()
    with vsphere.session(synced_vc) as si:
        where = placement.read(si, counter=counter)
    assert counter.calls == 1
    dc = places["dc"]._moId
    assert where.datacenters[dc] == "DC0"
    pools = {p.moref: p for p in where.pools}
    cluster = places["cluster"]
    assert pools[places["pool"]._moId].label == f"{cluster.name} / dev-{places['suffix']}"
    assert pools[cluster.resourcePool._moId].label == f"{cluster.name} (the whole cluster)"
    assert pools[places["pool"]._moId].compute == cluster._moId
    folders = {p.moref: p.label for p in where.folders}
    assert folders[places["folder"]._moId] == f"web-{places['suffix']}/prod"
    assert folders[places["dc"].vmFolder._moId] == "(the datacenter's VM folder)"
    networks = {p.label: p for p in where.networks}
    assert networks["VM Network"].kind == "Network"
    assert networks["DC0_DVPG0"].kind == "DistributedVirtualPortgroup"
    assert all(p.datacenter == dc for p in [*where.pools, *where.folders, *where.networks, *where.datastores])
    assert where.datastores and all("GB free" in d.label for d in where.datastores)
    assert places["network"]._moId in where.reach[cluster._moId]


def test_the_form_offers_the_vcenters_places_and_redraws_them(client, make_user, synced_vc, project, places):
    user = make_user("prov", project=project, role="provisioner")
    assert client.login(username=user.username, password=PASSWORD)
    # Only one vCenter is allowed: the form starts with its places.
    page = client.get(reverse("hosts:provision_new")).content.decode()
    assert f"dev-{places['suffix']}" in page and f"web-{places['suffix']}/prod" in page
    assert 'hx-target="#placement"' in page
    # Picking a datacenter redraws the pickers alone (htmx), narrowed to it.
    partial = client.get(
        reverse("hosts:provision_new"),
        {"vcenter": synced_vc.pk, "datacenter": places["dc"]._moId},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert partial.lstrip().startswith('<fieldset id="placement"') and "<html" not in partial
    assert f'value="{places["pool"]._moId}"' in partial and "VM Network" in partial
    # A vCenter the project may not clone in is neither offered nor accepted.
    other = VCenter.objects.create(name="elsewhere", url="https://192.0.2.9/sdk", username="x")
    assert "elsewhere" not in page
    response = client.post(
        reverse("hosts:provision_new"),
        form_data(other, project, photon_template(synced_vc), name_pattern="nowhere-{n}"),
    )
    assert response.status_code == 400 and not ProvisionRequest.objects.exists()


def test_a_clone_lands_in_the_chosen_pool_folder_network_and_datastore(
    client, make_user, synced_vc, project, places, outside, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    queued = record_queued(monkeypatch, lambda _name, args: args)
    user = make_user("prov", project=project, role="provisioner")
    assert client.login(username=user.username, password=PASSWORD)
    datastore = places["dc"].datastore[0]
    template = photon_template(synced_vc)
    name = f"placed-{places['suffix']}-{{n}}"
    data = form_data(
        synced_vc,
        project,
        template,
        name_pattern=name,
        datacenter=places["dc"]._moId,
        resource_pool=places["pool"]._moId,
        folder=places["folder"]._moId,
        network=places["network"]._moId,
        datastore=datastore._moId,
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("hosts:provision_new"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    req = ProvisionRequest.objects.get()
    assert req.placement["network"] == "VM Network" and req.placement["datacenter"] == "DC0"
    provision_tasks.run_request(*queued[0])
    pvm = ProvisionedVm.objects.get(request=req)
    assert pvm.state == ProvisionedVm.State.WAITING, pvm.detail
    vm = find_vm(outside, pvm.name)
    assert vm.resourcePool._moId == places["pool"]._moId
    assert vm.parent._moId == places["folder"]._moId
    assert [d._moId for d in vm.datastore] == [datastore._moId]
    nics = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)]
    # The template's first adapter is on the distributed port group; the clone's is moved.
    assert isinstance(nics[0].backing, vim.vm.device.VirtualEthernetCard.NetworkBackingInfo)
    assert nics[0].backing.network._moId == places["network"]._moId
    page = client.get(reverse("hosts:provision_request", args=[req.pk])).content.decode()
    assert f"web-{places['suffix']}/prod" in page and "VM Network" in page


def test_a_distributed_port_group_is_connected_by_its_switch(synced_vc, project, outside) -> None:
    dc = _datacenter(outside)
    group = next(n for n in dc.network if n.name == "DC0_DVPG0")
    template = photon_template(synced_vc)
    name = f"dvpg-{uuid.uuid4().hex[:6]}-{{n}}"
    req = make_request(
        synced_vc,
        project,
        template,
        name_pattern=name,
        network=group._moId,
        placement={"network": group.name, "network_kind": "DistributedVirtualPortgroup"},
    )
    with vsphere.session(synced_vc) as si:
        provision_services.start(req, enroll_base_url=BASE_URL, si=si)
    provision_tasks.run_request(req.pk, BASE_URL)
    pvm = ProvisionedVm.objects.get(request=req)
    assert pvm.state == ProvisionedVm.State.WAITING, pvm.detail
    nic = next(
        d
        for d in find_vm(outside, pvm.name).config.hardware.device
        if isinstance(d, vim.vm.device.VirtualEthernetCard)
    )
    assert nic.backing.port.portgroupKey == group.key
    assert nic.backing.port.switchUuid == group.config.distributedVirtualSwitch.uuid


def test_a_vcenter_off_the_projects_quota_is_refused_before_any_clone(synced_vc, project, outside) -> None:
    project.provision_quota.vcenters.clear()
    req = make_request(synced_vc, project, photon_template(synced_vc))
    refused(req, outside, "may not clone in vCenter")


def _form(
    user: Any, vcenter: VCenter, project: Any, where: placement.Placement, **fields: str
) -> ProvisionForm:
    data = form_data(vcenter, project, photon_template(vcenter), **fields)
    return ProvisionForm(data, user=user, placement=where)


def test_places_in_two_datacenters_or_out_of_the_clusters_reach_are_refused(
    make_user, synced_vc, project
) -> None:
    # A made-up placement: vcsim's own has one datacenter and every cluster reaches everything.
    P = placement.Place
    where = placement.Placement(
        datacenters={"dc-1": "East", "dc-2": "West"},
        pools=[P("pool-1", "c1 (the whole cluster)", "dc-1", compute="c1")],
        folders=[P("folder-2", "apps", "dc-2")],
        networks=[P("net-1", "lan", "dc-1", kind="Network")],
        datastores=[P("ds-1", "fast (1.0 GB free)", "dc-1")],
        reach={"c1": {"net-1"}},
        vm_roots={"dc-1": "folder-1", "dc-2": "folder-2"},
        computes={"c1": "c1"},
    )
    user = make_user("prov", project=project, role="provisioner")
    form = _form(user, synced_vc, project, where, resource_pool="pool-1", folder="folder-2")
    assert not form.is_valid() and "one datacenter" in str(form.non_field_errors())
    form = _form(user, synced_vc, project, where, resource_pool="pool-1", datastore="ds-1")
    assert not form.is_valid() and "do not reach fast" in str(form.errors["datastore"])
    # Another datacenter than the template's: its pool and datastore cannot be kept.
    form = _form(user, synced_vc, project, where, datacenter="dc-1", network="net-1")
    assert not form.is_valid()
    assert "pick one in East" in str(form.errors["resource_pool"])
    assert "pick one in East" in str(form.errors["datastore"])
    # With them picked, and no folder: that datacenter's VM folder.
    where.reach["c1"].add("ds-1")
    form = _form(user, synced_vc, project, where, resource_pool="pool-1", network="net-1", datastore="ds-1")
    assert form.is_valid(), form.errors
    assert form.cleaned_data["folder"] == "folder-1"
    assert form.placement_names() == {
        "resource_pool": "c1 (the whole cluster)",
        "network": "lan",
        "network_kind": "Network",
        "datastore": "fast (1.0 GB free)",
        "datacenter": "East",
    }
