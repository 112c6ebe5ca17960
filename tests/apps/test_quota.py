"""A project's application quota (issue 16: "Provisioners deploy and operate inside their
project's quota"): a deploy, a scale up or an update that would take the project's applications
over their containers, memory or CPUs is refused with the figures and changes nothing, through the
pages and the API alike; a service that declares no memory where memory is limited is refused
(it would escape the count); what another project runs, or what was removed, is not counted; the
quota is set in the Django admin, audited. No engine is asked: the rules run before any task."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from hosts.applications import catalog, deployments, operation_tasks, operations, quota, tasks
from hosts.models import Application, ApplicationPlacement, AppQuota, AppTemplate, Host, HostStatus
from portal.models import AuditEntry, Project, Role
from portal.refused import Refused
from tests.api.common import client_for

pytestmark = pytest.mark.django_db

GiB = 1024**3
SHOP = """\
services:
  web:
    image: lab/busybox:1.35
    deploy: {replicas: 2, resources: {reservations: {memory: 512m, cpus: '0.5'}}}
  db:
    image: lab/busybox:1.35
    deploy: {resources: {limits: {memory: 1g, cpus: '1'}}}
"""


@pytest.fixture(autouse=True)
def no_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rules only: nothing queued reaches a worker or an engine."""
    monkeypatch.setattr(tasks, "queue_deploy", lambda app, refresh=False: None)
    monkeypatch.setattr(operation_tasks, "enqueue", lambda task, *args: None)


def _hosts(project: Project, *names: str) -> list[Host]:
    return [
        Host.objects.create(
            project=project,
            name=n,
            docker_url=f"tcp://{n}:2376",
            status=HostStatus.ON,
            memory=64 * GiB,
            cpus=16,
        )
        for n in names
    ]


def _template(
    people: dict[str, Any], project: Project, source: str = SHOP, name: str = "shop", by: Any = None
) -> AppTemplate:
    draft = catalog.Draft(name=name, source=source)
    return catalog.save(by or people["manager"], draft, project=project).template


def _deploy(user: Any, template: AppTemplate, name: str) -> Application:
    return deployments.deploy(user, deployments.propose(user, template, name=name, values={}))


def test_no_quota_means_no_limit_and_usage_counts_what_still_runs(people, project, other_project) -> None:
    _hosts(project, "photon-1", "photon-2")
    template = _template(people, project)
    first = _deploy(people["provisioner"], template, "shop1")
    _deploy(people["provisioner"], template, "shop2")
    assert quota.usage(project.pk) == quota.Usage(6, 2 * (2 * 512 + 1024) * 2**20, 4.0)
    Application.objects.filter(pk=first.pk).update(state=Application.State.REMOVED)
    assert quota.usage(project.pk) == quota.Usage(3, (2 * 512 + 1024) * 2**20, 2.0)
    assert quota.usage(other_project.pk) == quota.Usage()


def test_a_deploy_over_the_quota_is_refused_with_the_figures_on_the_page_and_nothing_made(
    client, people, project
) -> None:
    _hosts(project, "photon-1", "photon-2")
    template = _template(people, project)
    _deploy(people["provisioner"], template, "shop1")  # 3 containers, 2 GiB, 2 CPUs
    AppQuota.objects.create(project=project, max_containers=5, max_memory_mb=8192)
    client.force_login(people["provisioner"])
    url = reverse("hosts:app_deploy", args=[template.pk])
    page = client.post(url, {"name": "shop2", "step": "deploy", "one_host": ""}).content.decode()
    said = "Team A&#x27;s application quota: its applications would reserve 6 containers, and the quota is 5"
    assert said in page
    assert 'id="deploy-button"' not in page
    assert "Application quota: 3 of 5 containers, 2,048 of 8,192 MiB in use." in page
    assert list(Application.objects.values_list("name", flat=True)) == ["shop1"]
    assert AuditEntry.objects.filter(action="app.deploy").count() == 1

    AppQuota.objects.filter(project=project).update(max_containers=6)
    client.post(url, {"name": "shop2", "step": "deploy", "one_host": ""})
    assert Application.objects.filter(name="shop2").exists() and quota.usage(project.pk).containers == 6


def test_memory_and_cpus_are_counted_as_each_service_declares_them(people, project) -> None:
    _hosts(project, "photon-1", "photon-2")
    AppQuota.objects.create(project=project, max_memory_mb=3000, max_cpus="2.50")
    template = _template(people, project)
    _deploy(people["provisioner"], template, "shop1")  # 2,048 MiB, 2 CPUs
    with pytest.raises(Refused) as refused:
        _deploy(people["provisioner"], template, "shop2")
    assert refused.value.status == 409
    assert refused.value.message == (
        "Over Team A's application quota: its applications would reserve 4,096 MiB of memory, and the "
        "quota is 3,000 MiB; 4 CPUs, and the quota is 2.5. Remove or scale down one of them, or ask an "
        "Admin for more."
    )
    # A service that declares no memory would escape the count: refused, named.
    bare = _template(people, project, "services:\n  cache:\n    image: lab/busybox:1.35\n", "cache")
    with pytest.raises(Refused, match="counts memory: cache must declare its memory"):
        _deploy(people["provisioner"], bare, "cache")
    assert Application.objects.count() == 1


def test_another_projects_applications_take_nothing_of_this_ones_quota(
    people, project, other_project, make_user
) -> None:
    _hosts(project, "photon-1", "photon-2")
    _hosts(other_project, "photon-9", "photon-10")
    theirs = make_user("theirs", project=other_project, role=Role.PROJECT_ADMIN)
    _deploy(theirs, _template(people, other_project, by=theirs), "their-shop")
    AppQuota.objects.create(project=project, max_containers=3)
    _deploy(people["provisioner"], _template(people, project), "our-shop")  # fits: theirs not counted
    # Nor does their quota stop them at ours, nor ours at theirs.
    AppQuota.objects.create(project=other_project, max_containers=3)
    with pytest.raises(Refused, match="Over Team B's application quota"):
        _deploy(theirs, _template(people, other_project, name="shop2", by=theirs), "their-shop2")


def test_a_scale_up_over_the_quota_is_refused_and_a_scale_down_always_allowed(people, project) -> None:
    _hosts(project, "photon-1", "photon-2", "photon-3")
    application = _deploy(people["provisioner"], _template(people, project), "shop1")
    Application.objects.filter(pk=application.pk).update(state=Application.State.RUNNING)
    application.refresh_from_db()
    AppQuota.objects.create(project=project, max_containers=4, max_cpus=2)
    with pytest.raises(Refused, match="3 CPUs, and the quota is 2"):
        operations.request_scale(people["provisioner"], application, "db", 2)
    assert application.placements.filter(service="db").count() == 1  # nothing placed
    assert not AuditEntry.objects.filter(action="app.scale").exists()
    # Over the quota now (an Admin lowered it): a scale down gives back, and is let through.
    AppQuota.objects.filter(project=project).update(max_containers=1, max_cpus=None)
    operations.request_scale(people["provisioner"], application, "web", 1)
    assert quota.usage(project.pk).containers == 2
    with pytest.raises(Refused, match="3 containers, and the quota is 1"):
        operations.request_scale(people["provisioner"], application, "web", 2)


def test_an_update_that_reserves_more_counts_the_difference(people, project) -> None:
    _hosts(project, "photon-1", "photon-2")
    template = _template(people, project)
    application = _deploy(people["provisioner"], template, "shop1")
    Application.objects.filter(pk=application.pk).update(state=Application.State.RUNNING)
    application.refresh_from_db()
    AppQuota.objects.create(project=project, max_memory_mb=3072, max_containers=3)
    bigger = SHOP.replace("memory: 1g", "memory: 2g")  # 2,048 -> 3,072 MiB: fits exactly
    catalog.save(people["manager"], catalog.Draft(name=template.name, source=bigger), template=template)
    deployments.request_update(people["provisioner"], application)
    db = ApplicationPlacement.objects.get(application=application, service="db")
    assert db.memory == 2 * GiB  # what it reserves now, counted by the next check
    Application.objects.filter(pk=application.pk).update(state=Application.State.RUNNING)
    application.refresh_from_db()
    biggest = SHOP.replace("memory: 1g", "memory: 3g")
    catalog.save(people["manager"], catalog.Draft(name=template.name, source=biggest), template=template)
    with pytest.raises(Refused, match="4,096 MiB of memory, and the quota is 3,072 MiB"):
        deployments.request_update(people["provisioner"], application)
    application.refresh_from_db()
    assert application.version.number == 2 and db.memory == ApplicationPlacement.objects.get(pk=db.pk).memory
    # Back to the first (smaller) version: let through.
    deployments.request_update(people["provisioner"], application, 1)
    assert ApplicationPlacement.objects.get(pk=db.pk).memory == GiB


def test_the_api_refuses_a_deploy_over_the_quota_as_the_page_does(people, project) -> None:
    _hosts(project, "photon-1", "photon-2")
    template = _template(people, project)
    AppQuota.objects.create(project=project, max_containers=2)
    api = client_for(people["provisioner"])
    for step in ("plan", "deploy"):
        answer = api.post(f"/api/app-templates/{template.pk}/{step}/", {"name": "shop"}, format="json")
        assert answer.status_code == 409
        assert "3 containers, and the quota is 2" in answer.json()["detail"]
    assert not Application.objects.exists()


def test_an_admin_sets_the_quota_in_the_admin_audited_and_sees_what_is_in_use(
    admin_client, people, project
) -> None:
    _hosts(project, "photon-1", "photon-2")
    _deploy(people["provisioner"], _template(people, project), "shop1")
    added = admin_client.post(
        reverse("admin:hosts_appquota_add"),
        {"project": project.pk, "max_containers": "10", "max_memory_mb": "", "max_cpus": "4"},
    )
    assert added.status_code == 302
    saved = AppQuota.objects.get(project=project)
    assert saved.max_containers == 10 and saved.max_memory_mb is None and saved.max_cpus == 4
    assert AuditEntry.objects.filter(action="admin.appquota.add").exists()
    listed = admin_client.get(reverse("admin:hosts_appquota_changelist")).content.decode()
    assert "Application quota: 3 of 10 containers, 2 of 4 CPUs in use." in listed
