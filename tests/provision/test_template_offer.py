"""The request form's templates: Photon OS only, in natural order (VM2 before VM10),
labelled with their vCenter and datacenter when there are several; none offered says why."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from hosts.models import Datacenter, VCenter
from tests.provision.conftest import vm_row

pytestmark = pytest.mark.django_db


def offered(page: str) -> list[str]:
    """The template select's option labels, as a person reads them."""
    select = re.search(r'<select name="template".*?</select>', page, re.S)
    assert select is not None, page[:3000]
    return [label.strip() for label in re.findall(r"<option value=\"\d+\"[^>]*>([^<]*)</option>", select[0])]


@pytest.fixture
def prov(client, make_user, project, vc_row, no_placement):  # type: ignore[no-untyped-def]
    project.provision_quota.vcenters.add(vc_row)
    client.force_login(make_user("prov", project=project, role="provisioner"))
    return client


def test_only_photon_templates_in_natural_order(prov, vc_row) -> None:
    for name in ("VM10", "VM1", "VM2", "VM11"):
        vm_row(vc_row, name)
    vm_row(vc_row, "windows-2019", photon=False)
    vm_row(vc_row, "centos-7", photon=False)
    page = prov.get(reverse("hosts:provision_new")).content.decode()
    assert offered(page) == ["VM1", "VM2", "VM10", "VM11"]


def test_a_listed_vm_that_is_not_photon_is_not_offered(prov, vc_row, project) -> None:
    listed = vm_row(vc_row, "centos-listed", photon=False, template=False)
    project.provision_quota.templates.add(listed)
    vm_row(vc_row, "photon-5")
    assert offered(prov.get(reverse("hosts:provision_new")).content.decode()) == ["photon-5"]


def test_several_vcenters_label_each_template(prov, vc_row, project) -> None:
    other = VCenter.objects.create(name="vc-b", url="https://vc-b.test", username="u", password="p")
    project.provision_quota.vcenters.add(other)
    dc = Datacenter.objects.create(vcenter=vc_row, moref="datacenter-2", name="DC1")
    vm_row(vc_row, "photon-5", datacenter=dc)
    vm_row(other, "photon-4")
    page = prov.get(reverse("hosts:provision_new"), {"vcenter": vc_row.pk}).content.decode()
    assert offered(page) == ["photon-4 (vc-b)", "photon-5 (vc-a / DC1)"]


def test_no_template_says_why(prov, vc_row) -> None:
    vm_row(vc_row, "windows-2019", photon=False)
    page = prov.get(reverse("hosts:provision_new")).content.decode()
    assert (
        "No Photon OS template in vc-a: mark a Photon VM as a template in vSphere, "
        "or an Admin lists one on the quota"
    ) in page
    assert offered(page) == []
