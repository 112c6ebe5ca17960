"""Provisioning quotas, set by an Admin in the portal (Django's admin not needed): where a
project may clone, how much it may hold, which extra Photon VMs it may clone; audited;
nobody else reaches the page, and a forged post changes nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from hosts.models import Host, ProvisionQuota, VCenter
from hosts.provision import services as provision_services
from portal.models import AuditEntry, Project
from portal.refused import Refused
from tests.provision.conftest import vm_row

pytestmark = pytest.mark.django_db


def quota_post(vcenter: VCenter, **fields: object) -> dict[str, object]:
    data: dict[str, object] = {"vcenters": [vcenter.pk], "max_vms": 3, "max_cpus": 6, "max_memory_mb": 4096}
    data.update(fields)
    return data


def test_an_admin_sets_a_quota_and_the_form_then_offers_that_vcenter(
    client, make_user, vc_row, no_placement
) -> None:
    team = Project.objects.create(name="team")
    admin = make_user("root", admin=True)
    client.force_login(admin)
    listing = client.get(reverse("hosts:provision")).content.decode()
    assert f'href="{reverse("hosts:provision_quotas")}"' in listing
    quotas = client.get(reverse("hosts:provision_quotas")).content.decode()
    assert "team" in quotas and "none" in quotas
    page = client.get(reverse("hosts:provision_quota", args=[team.pk]))
    assert page.status_code == 200 and "vc-a" in page.content.decode()
    response = client.post(reverse("hosts:provision_quota", args=[team.pk]), quota_post(vc_row))
    assert response.status_code == 302
    quota = ProvisionQuota.objects.get(project=team)
    assert list(quota.vcenters.all()) == [vc_row]
    assert (quota.max_vms, quota.max_cpus, quota.max_memory_mb) == (3, 6, 4096)
    entry = AuditEntry.objects.get(action="provision.quota")
    assert entry.actor == admin and entry.project == team
    quotas = client.get(reverse("hosts:provision_quotas")).content.decode()
    assert "3 VMs" in quotas
    # The project's Provisioner now finds vc-a on the request form.
    client.force_login(make_user("prov", project=team, role="provisioner"))
    form = client.get(reverse("hosts:provision_new")).content.decode()
    assert f'<option value="{vc_row.pk}" selected>vc-a</option>' in form
    assert "may not provision on any vCenter" not in form


def test_extra_templates_are_photon_vms_of_the_chosen_vcenters_that_are_no_host(
    client, make_user, vc_row, project
) -> None:
    plain = vm_row(vc_row, "photon-plain", template=False)
    vm_row(vc_row, "windows", photon=False, template=False)
    host = Host.objects.create(project=project, name="web", docker_url="tcp://10.0.0.9:2376")
    vm_row(vc_row, "photon-host", template=False, host=host)
    project.provision_quota.vcenters.add(vc_row)
    client.force_login(make_user("root", admin=True))
    page = client.get(reverse("hosts:provision_quota", args=[project.pk])).content.decode()
    assert "photon-plain" in page
    assert "windows" not in page and "photon-host" not in page
    response = client.post(
        reverse("hosts:provision_quota", args=[project.pk]), quota_post(vc_row, templates=[plain.pk])
    )
    assert response.status_code == 302
    assert list(project.provision_quota.templates.all()) == [plain]


def test_a_template_of_a_vcenter_not_chosen_is_refused_and_changes_nothing(
    client, make_user, vc_row, project
) -> None:
    other = VCenter.objects.create(name="vc-b", url="https://vc-b.test", username="u", password="p")
    elsewhere = vm_row(other, "photon-b", template=False)
    client.force_login(make_user("root", admin=True))
    response = client.post(
        reverse("hosts:provision_quota", args=[project.pk]), quota_post(vc_row, templates=[elsewhere.pk])
    )
    assert response.status_code == 400
    quota = ProvisionQuota.objects.get(project=project)
    assert not quota.vcenters.exists() and not quota.templates.exists() and quota.max_vms == 5
    assert not AuditEntry.objects.filter(action="provision.quota").exists()


def test_the_service_refuses_what_the_form_would(vc_row, project, make_user) -> None:
    admin = make_user("root", admin=True)
    windows = vm_row(vc_row, "windows", photon=False, template=False)
    with pytest.raises(Refused, match="not a Photon OS VM") as refused:
        provision_services.set_quota(
            project, admin, vcenters=[vc_row], templates=[windows], max_vms=1, max_cpus=1, max_memory_mb=512
        )
    assert refused.value.field == "templates"
    vc_row.enabled = False
    vc_row.save()
    with pytest.raises(Refused, match="disabled"):
        provision_services.set_quota(
            project, admin, vcenters=[vc_row], templates=[], max_vms=1, max_cpus=1, max_memory_mb=512
        )
    with pytest.raises(Refused):
        provision_services.set_quota(
            project, None, vcenters=[], templates=[], max_vms=1, max_cpus=1, max_memory_mb=512
        )
    assert ProvisionQuota.objects.get(project=project).max_vms == 5


@pytest.mark.parametrize("role", ["project_admin", "provisioner", None])
def test_nobody_but_an_admin_reaches_the_quota_page_and_a_forged_post_changes_nothing(
    client, make_user, vc_row, project, role
) -> None:
    client.force_login(make_user("someone", project=project if role else None, role=role))
    assert client.get(reverse("hosts:provision_quotas")).status_code in (403, 404)
    url = reverse("hosts:provision_quota", args=[project.pk])
    assert client.get(url).status_code in (403, 404)
    assert client.post(url, quota_post(vc_row, max_vms=99)).status_code in (403, 404)
    quota = ProvisionQuota.objects.get(project=project)
    assert quota.max_vms == 5 and not quota.vcenters.exists()
    assert not AuditEntry.objects.filter(action="provision.quota").exists()
    assert reverse("hosts:provision_quotas") not in client.get(reverse("hosts:provision")).content.decode()
