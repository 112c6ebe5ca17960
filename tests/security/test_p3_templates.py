"""Issue 12, point 3: only templates are templates. A Provisioner of project A cannot
clone project B's running host (its disks and secrets) nor any VM that is not marked as
a template in vSphere or listed by an Admin on A's quota: not offered by the form,
refused with a clear message by the form and by ``provision_checks.check`` before any clone.
Against a vcsim of this module's own (it marks a VM as a template)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from pyVmomi import vim

from hosts.models import Host, ProvisionQuota, ProvisionRequest, VCenter, VirtualMachine
from hosts.provision import checks as provision_checks
from hosts.provision import services as provision_services
from hosts.vsphere import client as vsphere
from hosts.vsphere import links as vsphere_links
from hosts.vsphere import sync as vsphere_sync
from portal.models import Project, Role
from tests.lab.fixtures import start
from tests.vsphere.conftest import add_vcenter, find_vm

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def p3_vcenter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from tests.lab import vcenter

    workdir = tmp_path_factory.mktemp("p3-vcenter")
    info = start(lambda: vcenter.up(workdir, vms=12, photon_share=0.5))
    # vSphere's own template flag, set the way an administrator of vCenter sets it.
    si = vsphere.connect_pinned(
        info["url"], info["user"], info["password"], Path(info["certificate"]).read_text()
    )
    try:
        vm = find_vm(si, info["powered_off_photon"][0])
        if not vm.config.template:
            vm.MarkAsTemplate()
    finally:
        vsphere.disconnect(si)
    yield info
    vcenter.down(workdir)


@pytest.fixture
def world(p3_vcenter: dict[str, Any], make_user: Any) -> dict[str, Any]:
    vc = add_vcenter(p3_vcenter)
    with vsphere.session(vc) as si:
        vsphere_sync.sync(vc, si)
    a, b = Project.objects.create(name="a"), Project.objects.create(name="b")
    for project in (a, b):
        ProvisionQuota.objects.create(project=project).vcenters.add(vc)
    photon = VirtualMachine.objects.filter(vcenter=vc, is_photon=True, is_template=False, gone=False)
    photon = photon.exclude(ip_address="").order_by("name")
    b_vm, plain = photon[0], photon[1]
    # B's running host, linked by an Admin's confirmation.
    b_host = Host.objects.create(project=b, name="b-web", docker_url=f"tcp://{b_vm.ip_address}:2376")
    vsphere_links.link_vm(b_vm, b_host, actor=None)
    return {
        "vc": vc,
        "a": a,
        "b": b,
        "b_vm": b_vm,
        "plain": plain,
        "template": VirtualMachine.objects.get(vcenter=vc, is_template=True),
        "prov": make_user("alice", project=a, role=Role.PROVISIONER),
    }


def _form(world: dict[str, Any], vm: VirtualMachine) -> dict[str, Any]:
    return {
        "project": world["a"].pk,
        "vcenter": world["vc"].pk,
        "template": vm.pk,
        "cpus": 1,
        "memory_mb": 512,
        "count": 1,
        "name_pattern": "stolen-{n}",
    }


def _vm_count(vc: VCenter) -> int:
    with vsphere.session(vc) as si:
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        try:
            return len(view.view)
        finally:
            view.Destroy()


def test_the_form_offers_only_templates(client, world) -> None:
    client.force_login(world["prov"])
    page = client.get(reverse("hosts:provision_new"), {"vcenter": world["vc"].pk})
    offered = set(page.context["form"].fields["template"].queryset)
    assert offered == {world["template"]}


def test_another_projects_host_posted_as_template_is_refused_and_nothing_cloned(client, world) -> None:
    client.force_login(world["prov"])
    before = _vm_count(world["vc"])
    response = client.post(reverse("hosts:provision_new"), _form(world, world["b_vm"]))
    assert response.status_code == 400
    assert "is a portal host&#x27;s VM, not a template" in response.content.decode()
    assert not ProvisionRequest.objects.exists()
    assert _vm_count(world["vc"]) == before


def test_a_plain_vm_is_refused_unless_an_admin_lists_it_for_that_project(client, world) -> None:
    client.force_login(world["prov"])
    response = client.post(reverse("hosts:provision_new"), _form(world, world["plain"]))
    assert response.status_code == 400
    assert "is not a template: only VMs marked as templates in vSphere" in response.content.decode()
    # Listed on B's quota: still not A's.
    world["b"].provision_quota.templates.add(world["plain"])
    response = client.post(reverse("hosts:provision_new"), _form(world, world["plain"]))
    assert response.status_code == 400 and "is not a template" in response.content.decode()
    assert not ProvisionRequest.objects.exists()


def test_a_forged_moref_is_refused_by_check_before_any_clone(world) -> None:
    """What the form stops, the service function stops too (for any caller)."""
    vc, a = world["vc"], world["a"]
    # Even an Admin's listing does not make a host's VM a template.
    a.provision_quota.templates.add(world["b_vm"])
    before = _vm_count(vc)
    for vm, message in ((world["b_vm"], "is a portal host's VM"), (world["plain"], "is not a template")):
        req = ProvisionRequest.objects.create(
            project=a, vcenter=vc, template=vm.moref, count=1, cpus=1, memory_mb=512, name_pattern="x-{n}"
        )
        with vsphere.session(vc) as si, pytest.raises(provision_checks.ProvisionError, match=message):
            provision_services.start(req, enroll_base_url="http://portal.test/", si=si)
        assert not req.vms.exists()
    assert _vm_count(vc) == before


def test_a_vsphere_template_and_an_admin_listed_vm_pass_the_check(world) -> None:
    vc, a = world["vc"], world["a"]
    a.provision_quota.templates.add(world["plain"])
    with vsphere.session(vc) as si:
        for vm in (world["template"], world["plain"]):
            req = ProvisionRequest(
                project=a, vcenter=vc, template=vm.moref, count=1, name_pattern=f"ok-{vm.pk}"
            )
            assert provision_checks.check(req, si).template_name == vm.name
