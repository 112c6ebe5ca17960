"""Patch changes in the browser's pages (the service rules are tests/patches/test_patch_changes.py):
plan from the form, the plan shown per host, each person's buttons, the actions through the
same services (refusals as messages, 404 for another project's change), maintenance windows
on the project page, and what came from hosts escaped."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from hosts.models import MaintenanceWindow, PatchChange, PatchChangeStatus, PatchRunState
from portal.models import AuditEntry, Project, Role
from tests.patches.patch_fleet import make_host
from tests.queued import record_queued

pytestmark = pytest.mark.django_db

HOSTILE = '<img src=x onerror="alert(1)">'


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    return record_queued(monkeypatch)


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def plan(client: Client, project: Project, hosts: list[Any], **extra: Any) -> Any:
    data = {
        "project": project.pk,
        "hosts": [h.pk for h in hosts],
        "kind": "security",
        "batch_size": 1,
        "pause_on_failure": "on",
        "success_window_hours": 24,
        **extra,
    }
    return client.post(reverse("hosts:patch_new"), data)


def test_a_provisioner_plans_from_the_form_and_sees_each_hosts_transitions(
    make_user: Any, project: Project, hosts: list[Any]
) -> None:
    prov = make_user("prov", project=project, role=Role.PROVISIONER)
    client = signed_in(prov)
    form = client.get(reverse("hosts:patch_new") + f"?hosts={hosts[0].pk}")
    assert form.status_code == 200
    # The host ticked on the page it came from comes ticked, with its last check's counts.
    assert (
        f'value="{hosts[0].pk}"' in form.content.decode() and "security advisories" in form.content.decode()
    )
    response = plan(client, project, hosts, title="Monthly", kind="advisories", advisories="PHSA-2026-0001")
    change = PatchChange.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "hosts:patch_change", args=[change.pk]
    )
    page = client.get(response["Location"]).content.decode()
    # Host a gets openssl's security fix; b has it already.
    assert 'data-package="openssl"' in page and "3.0.8-2.ph5" in page
    assert "Nothing to apply on this host." in page
    # A Provisioner may submit and withdraw their plan, not approve it.
    assert 'id="patch-submit"' in page and 'id="patch-cancel"' in page and 'id="patch-approve"' not in page


def test_bad_input_on_the_form_says_why_and_plans_nothing(
    make_user: Any, project: Project, hosts: list[Any]
) -> None:
    client = signed_in(make_user("prov", project=project, role=Role.PROVISIONER))
    response = plan(client, project, hosts, kind="advisories", advisories="")
    assert response.status_code == 200 and "choose at least one advisory" in response.content.decode()
    other = Project.objects.create(name="db")
    stranger = make_host(other, "stranger")
    response = plan(client, project, [stranger])
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not PatchChange.objects.exists() and not AuditEntry.objects.filter(action="patch.plan").exists()


def test_a_viewer_sees_a_change_without_buttons_and_cannot_act_or_plan(
    make_user: Any, project: Project, hosts: list[Any]
) -> None:
    prov = make_user("prov", project=project, role=Role.PROVISIONER)
    plan(signed_in(prov), project, hosts)
    change = PatchChange.objects.get()
    viewer = signed_in(make_user("viewer", project=project, role=Role.VIEWER))
    page = viewer.get(reverse("hosts:patch_change", args=[change.pk]))
    assert page.status_code == 200 and 'id="patch-actions"' not in page.content.decode()
    assert viewer.get(reverse("hosts:patch_new")).status_code == 403
    response = viewer.post(reverse("hosts:patch_change_act", args=[change.pk, "submit"]))
    assert response.status_code == 403
    change.refresh_from_db()
    assert change.status == PatchChangeStatus.PLANNED


def test_another_projects_change_is_not_there(make_user: Any, project: Project, hosts: list[Any]) -> None:
    plan(signed_in(make_user("prov", project=project, role=Role.PROVISIONER)), project, hosts)
    change = PatchChange.objects.get()
    other = Project.objects.create(name="db")
    outsider = signed_in(make_user("outsider", project=other, role=Role.PROJECT_ADMIN))
    assert outsider.get(reverse("hosts:patch_change", args=[change.pk])).status_code == 404
    for action in ("approve", "apply", "cancel"):
        assert outsider.post(reverse("hosts:patch_change_act", args=[change.pk, action])).status_code == 404
    assert f"#{change.pk}" not in outsider.get(reverse("hosts:patch_changes")).content.decode()
    change.refresh_from_db()
    assert change.status == PatchChangeStatus.PLANNED


def test_submit_approve_and_apply_through_the_buttons(
    make_user: Any, project: Project, hosts: list[Any], queued: list[Any]
) -> None:
    prov = signed_in(make_user("prov", project=project, role=Role.PROVISIONER))
    plan(prov, project, hosts)
    change = PatchChange.objects.get()
    act = lambda client, name, **data: client.post(  # noqa: E731
        reverse("hosts:patch_change_act", args=[change.pk, name]), data, follow=True
    )
    assert act(prov, "approve").status_code == 403  # not theirs to decide: nothing changes
    act(prov, "submit")
    early = act(prov, "submit").content.decode()  # twice: the state refuses it, said on the page
    assert "not planned: it cannot be submitted" in early
    admin = signed_in(make_user("padmin", project=project, role=Role.PROJECT_ADMIN))
    act(admin, "approve", comment="ok for tonight")
    assert AuditEntry.objects.get(action="patch.approve").after == {"comment": "ok for tonight"}
    page = act(admin, "apply").content.decode()
    change.refresh_from_db()
    assert change.status == PatchChangeStatus.APPLYING
    assert [args for name, args in queued if name == "hosts.apply_patch_run"] == [
        (change.runs.get(host__name="a").pk,)
    ]
    assert 'data-state="queued"' in page
    assert act(prov, "nonsense").status_code == 404


def test_outside_the_projects_windows_an_applied_change_waits_for_the_next(
    make_user: Any, project: Project, hosts: list[Any], queued: list[Any]
) -> None:
    padmin = make_user("padmin", project=project, role=Role.PROJECT_ADMIN)
    admin = signed_in(padmin)
    from django.utils import timezone

    now = timezone.now()
    closed_hour = (now.hour + 12) % 24
    response = admin.post(
        reverse("hosts:window_add", args=[project.pk]),
        {"weekday": "", "start": f"{closed_hour:02d}:00", "duration_minutes": 60},
        follow=True,
    )
    assert "Maintenance window added: Every day" in response.content.decode()
    plan(admin, project, hosts)
    change = PatchChange.objects.get()
    for name in ("submit", "approve", "apply"):
        admin.post(reverse("hosts:patch_change_act", args=[change.pk, name]))
    change.refresh_from_db()
    assert change.status == PatchChangeStatus.SCHEDULED and change.not_before is not None
    assert change.not_before.hour == closed_hour
    assert not [q for q in queued if q[0] == "hosts.apply_patch_run"]
    assert change.runs.get(host__name="a").state == PatchRunState.WAITING


def test_windows_are_kept_by_project_admins_only(make_user: Any, project: Project) -> None:
    prov = signed_in(make_user("prov", project=project, role=Role.PROVISIONER))
    page = prov.get(reverse("project-detail", args=[project.pk])).content.decode()
    assert 'id="maintenance-windows"' in page and 'id="window-add"' not in page
    response = prov.post(
        reverse("hosts:window_add", args=[project.pk]),
        {"weekday": "6", "start": "02:00", "duration_minutes": 120},
    )
    assert response.status_code == 403 and not MaintenanceWindow.objects.exists()
    admin = signed_in(make_user("padmin", project=project, role=Role.PROJECT_ADMIN))
    admin.post(
        reverse("hosts:window_add", args=[project.pk]),
        {"weekday": "6", "start": "02:00", "duration_minutes": 120},
    )
    window = MaintenanceWindow.objects.get()
    assert (
        "Sunday 02:00 UTC, 120 min"
        in admin.get(reverse("project-detail", args=[project.pk])).content.decode()
    )
    bad = admin.post(
        reverse("hosts:window_add", args=[project.pk]),
        {"weekday": "9", "start": "25:00", "duration_minutes": 0},
        follow=True,
    )
    assert "The window was not added" in bad.content.decode() and MaintenanceWindow.objects.count() == 1
    other = Project.objects.create(name="db")
    outsider = signed_in(make_user("outsider", project=other, role=Role.PROJECT_ADMIN))
    assert outsider.post(reverse("hosts:window_remove", args=[project.pk, window.pk])).status_code == 404
    # A window of another project named through one's own project is not there either.
    assert (
        signed_in(make_user("od", project=other, role=Role.PROJECT_ADMIN))
        .post(reverse("hosts:window_remove", args=[other.pk, window.pk]))
        .status_code
        == 404
    )
    assert MaintenanceWindow.objects.filter(pk=window.pk).exists()
    admin.post(reverse("hosts:window_remove", args=[project.pk, window.pk]))
    assert not MaintenanceWindow.objects.exists()
    assert AuditEntry.objects.filter(action__in=["patch.window_add", "patch.window_remove"]).count() == 2


def test_host_names_and_reasons_from_hosts_are_escaped(
    make_user: Any, project: Project, hosts: list[Any]
) -> None:
    client = signed_in(make_user("prov", project=project, role=Role.PROVISIONER))
    plan(client, project, hosts, title=HOSTILE)
    change = PatchChange.objects.get()
    change.runs.filter(host__name="a").update(reason=HOSTILE)
    for url in (
        reverse("hosts:patch_change", args=[change.pk]),
        reverse("hosts:patch_change", args=[change.pk]) + "?part=runs",
        reverse("hosts:patch_changes"),
    ):
        page = client.get(url).content.decode()
        assert HOSTILE not in page
    assert "&lt;img src=x" in client.get(reverse("hosts:patch_change", args=[change.pk])).content.decode()


def test_a_change_planned_without_a_title_is_named_for_what_it_applies_and_where() -> None:
    from hosts.patches.changes import default_title
    from hosts.patches.plan import Selection

    assert default_title(Selection("security"), 1) == "Security updates on 1 host"
    assert default_title(Selection("all", exclude=("kernel*",)), 12) == "All updates on 12 hosts"
    chosen = Selection("advisories", ("A-1", "A-2", "A-3", "A-4"))
    assert default_title(chosen, 2) == "A-1, A-2, A-3 … on 2 hosts"


def test_a_tag_chooses_the_hosts_and_hosts_and_a_tag_together_are_refused(
    make_user: Any, project: Project, hosts: list[Any]
) -> None:
    from hosts.models import Tag

    tag = Tag.objects.create(name="edge")
    hosts[0].tags.add(tag)
    client = signed_in(make_user("prov", project=project, role=Role.PROVISIONER))
    both = plan(client, project, hosts, tag=tag.pk)
    assert both.status_code == 200 and "Choose hosts or a tag, not both" in both.content.decode()
    neither = plan(client, project, [], tag="")
    assert neither.status_code == 200 and "Choose at least one host." in neither.content.decode()
    assert not PatchChange.objects.exists()
    response = plan(client, project, [], tag=tag.pk)
    assert response.status_code == 302
    assert [r.host.name for r in PatchChange.objects.get().runs.select_related("host")] == ["a"]
