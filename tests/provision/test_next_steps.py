"""The first hour: whoever cannot provision yet is told why and what to do, on the
provisioning list (no project, a Viewer, an Admin with no project) and on the request
form (a project that may clone in no vCenter)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from hosts.models import ProvisionQuota
from portal.models import Project

pytestmark = pytest.mark.django_db


def test_someone_in_no_project_is_told_to_ask_an_admin(client, make_user) -> None:
    client.force_login(make_user("newcomer"))
    page = client.get(reverse("hosts:provision"))
    assert page.status_code == 200
    assert "You are in no project yet: ask an Admin to add you to one" in page.content.decode()
    assert b'id="provision-new"' not in page.content


def test_a_viewer_is_told_who_can_request(client, make_user, project) -> None:
    client.force_login(make_user("watcher", project=project, role="viewer"))
    page = client.get(reverse("hosts:provision")).content.decode()
    assert "Viewers see requests; a Provisioner or Project admin of fleet can request hosts" in page
    assert 'id="provision-new"' not in page


def test_an_admin_with_no_project_is_sent_to_create_one(client, make_user) -> None:
    client.force_login(make_user("root", admin=True))
    page = client.get(reverse("hosts:provision")).content.decode()
    assert "Create a project first" in page
    assert f'href="{reverse("project-create")}"' in page


def test_a_provisioner_sees_the_buttons_and_no_hint(client, make_user, project) -> None:
    client.force_login(make_user("prov", project=project, role="provisioner"))
    page = client.get(reverse("hosts:provision")).content.decode()
    assert 'id="provision-new"' in page and 'id="provision-next-step"' not in page


def test_the_form_says_a_project_without_a_vcenter_needs_a_quota(client, make_user, project) -> None:
    client.force_login(make_user("prov", project=project, role="provisioner"))
    page = client.get(reverse("hosts:provision_new")).content.decode()
    assert (
        "Project fleet may not provision on any vCenter yet: an Admin gives it a provisioning quota" in page
    )
    # Only an Admin can act on it: nobody else is sent to a page that would refuse them.
    assert reverse("hosts:provision_quota", args=[project.pk]) not in page


def test_a_project_with_no_quota_row_reads_the_same(client, make_user) -> None:
    bare = Project.objects.create(name="bare")
    client.force_login(make_user("prov", project=bare, role="provisioner"))
    page = client.get(reverse("hosts:provision_new")).content.decode()
    assert "Project bare may not provision on any vCenter yet" in page


def test_an_admin_is_linked_to_the_projects_quota(client, make_user, project) -> None:
    client.force_login(make_user("root", admin=True))
    page = client.get(reverse("hosts:provision_new")).content.decode()
    assert "Project fleet may not provision on any vCenter yet" in page
    assert f'href="{reverse("hosts:provision_quota", args=[project.pk])}"' in page


def test_a_disabled_vcenter_on_the_quota_is_no_vcenter(
    client, make_user, project, vc_row, no_placement
) -> None:
    project.provision_quota.vcenters.add(vc_row)
    vc_row.enabled = False
    vc_row.save()
    client.force_login(make_user("prov", project=project, role="provisioner"))
    page = client.get(reverse("hosts:provision_new")).content.decode()
    assert "Project fleet may not provision on any vCenter yet" in page


def test_no_notice_once_the_project_may_clone(client, make_user, project, vc_row, no_placement) -> None:
    ProvisionQuota.objects.get(project=project).vcenters.add(vc_row)
    client.force_login(make_user("prov", project=project, role="provisioner"))
    page = client.get(reverse("hosts:provision_new")).content.decode()
    assert "may not provision on any vCenter" not in page
