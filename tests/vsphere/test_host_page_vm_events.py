"""The host page of a Photon VM shows the VM's recent vSphere events (asked of vCenter as the page loads)."""

from __future__ import annotations

import html

import pytest
from django.urls import reverse

from hosts.models import Host, VirtualMachine
from hosts.vsphere import client as vsphere
from hosts.vsphere import links as vsphere_links
from hosts.vsphere import sync as vsphere_sync
from portal.models import Project

pytestmark = pytest.mark.django_db

AWKWARD = '<script>alert("vm")</script>'


@pytest.fixture
def linked(lab_vc):
    """The lab synced; the Photon VM with markup in its name is the (disabled) host 'awkward'."""
    project = Project.objects.create(name="fleet")
    with vsphere.session(lab_vc) as si:
        vsphere_sync.sync(lab_vc, si)
        vm = VirtualMachine.objects.get(vcenter=lab_vc, name=AWKWARD)
        # Disabled: the page must not wait on the engine of a documentation-range address.
        host = Host.objects.create(
            project=project, name="awkward", address=vm.ip_address, docker_url="ssh://x", enabled=False
        )
    # An Admin confirms the VM is that host (the sync links by provisioning's proof only).
    vsphere_links.link_vm(vm, host, actor=None)
    vm.refresh_from_db()
    assert vm.host == host
    return project, host, vm


def test_the_host_page_loads_its_vms_vsphere_events(linked, client, make_user) -> None:
    project, host, vm = linked
    client.force_login(make_user("viewer", project=project, role="viewer"))
    page = client.get(reverse("hosts:host", args=[host.pk])).content.decode()
    events_url = reverse("hosts:vm_events", args=[vm.pk])
    assert f'hx-get="{events_url}"' in page and f'id="host-vm-events-{vm.pk}"' in page
    assert html.escape(AWKWARD) in page and AWKWARD not in page
    events = client.get(events_url).content.decode()
    assert 'class="vm-event"' in events


def test_gone_vms_show_no_events_and_strangers_see_nothing(linked, client, make_user) -> None:
    project, host, vm = linked
    VirtualMachine.objects.filter(pk=vm.pk).update(gone=True)
    client.force_login(make_user("viewer", project=project, role="viewer"))
    page = client.get(reverse("hosts:host", args=[host.pk])).content.decode()
    assert f'id="host-vm-events-{vm.pk}"' not in page
    other = Project.objects.create(name="other")
    client.force_login(make_user("stranger", project=other, role="project_admin"))
    assert client.get(reverse("hosts:host", args=[host.pk])).status_code == 404
    assert client.get(reverse("hosts:vm_events", args=[vm.pk])).status_code == 404
