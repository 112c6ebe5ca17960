"""Queued work is never silently stuck: with the task broker down a request says so at once
(503) and its row says it could not be queued; a task redelivered after its worker died
fails the row that worker left "running"; the sweep fails rows stuck queued or running."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from hosts import stale_work
from hosts.applications import tasks as app_tasks
from hosts.changes import approval, outcome
from hosts.fleet import services as fleet_services
from hosts.fleet import tasks as fleet_tasks
from hosts.models import (
    Application,
    Change,
    ChangeRun,
    Deploy,
    Host,
    ProvisionedVm,
    ProvisionRequest,
    VCenter,
    VirtualMachine,
    VmTask,
)
from hosts.models.changes import ChangeStatus
from hosts.provision import tasks as provision_tasks
from hosts.vsphere import tasks as vsphere_tasks
from portal import watchers
from portal.models import AuditEntry, Event, Project, Role
from portal.queueing import NOT_QUEUED, QueueUnavailable
from tests import queued
from tests.api.common import client_for
from tests.provision.test_enrollment import phone_home, waiting  # noqa: F401 -- fixture


@pytest.fixture
def project(db: None) -> Project:
    return Project.objects.create(name="team")


@pytest.fixture
def provisioner(make_user: Any, project: Project) -> Any:
    return make_user("prov", project=project, role=Role.PROVISIONER)


def _host(project: Project) -> Host:
    # Port 9 (discard): were the engine or vCenter asked, the test would see an error instead.
    return Host.objects.create(project=project, name="photon-vm", docker_url="tcp://127.0.0.1:9")


def _vm(project: Project) -> VirtualMachine:
    vcenter = VCenter.objects.create(name="vc", url="https://127.0.0.1:9", username="u", password="p")
    return VirtualMachine.objects.create(
        vcenter=vcenter, moref="vm-1", name="photon-vm", host=_host(project), power_state="poweredOff"
    )


@pytest.fixture
def broker_down() -> Iterator[None]:
    with queued.broker_down():
        yield


@pytest.mark.django_db(transaction=True)
def test_an_action_with_the_broker_down_answers_503_and_its_row_says_it_was_not_queued(
    project: Project, provisioner: Any, broker_down: None
) -> None:
    vm = _vm(project)
    api = client_for(provisioner).post(f"/api/vms/{vm.pk}/power/", {"action": "power_on"}, format="json")
    assert api.status_code == 503, api.content
    assert api.json()["detail"] == "Could not be queued: the task broker (Redis) did not answer; try again."
    task = VmTask.objects.get()
    assert (task.state, task.error) == (VmTask.State.ERROR, NOT_QUEUED) and task.finished
    assert AuditEntry.objects.get(action="vm.power_on.failed").after == {
        "task": task.pk,
        "error": NOT_QUEUED,
        "argument": "",
    }

    browser = Client()
    browser.force_login(provisioner)
    ui = browser.post(f"/hosts/vsphere/vms/{vm.pk}/action/", {"action": "power_on"}, HTTP_HX_REQUEST="true")
    assert ui.status_code == 503 and "Could not be queued: the task broker (Redis)" in ui.content.decode()
    assert not VmTask.objects.exclude(state=VmTask.State.ERROR).exists()


@pytest.mark.django_db(transaction=True)
def test_a_deploy_with_the_broker_down_is_failed_and_its_secrets_cleared(
    project: Project, provisioner: Any, broker_down: None
) -> None:
    spec = {"image": "busybox", "name": "web", "environment": {"PASSWORD": "s3cret"}}
    with pytest.raises(QueueUnavailable) as refused:
        fleet_services.request_deploy(_host(project), provisioner, spec, "tok")
    assert refused.value.status == 503
    deploy = Deploy.objects.get()
    assert (deploy.state, deploy.outcome) == (Deploy.State.ERROR, NOT_QUEUED)
    assert str(deploy.environment or "") == ""


@pytest.mark.django_db(transaction=True)
def test_an_apply_with_the_broker_down_fails_every_host_and_may_be_applied_again(
    project: Project, make_user: Any, broker_down: None
) -> None:
    admin = make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    change = Change.objects.create(
        project=project, title="t", created_by=admin, settings={"sshd": {"MaxAuthTries": 3}}, status="planned"
    )
    for name in ("h1", "h2"):
        host = Host.objects.create(project=project, name=name, docker_url=f"tcp://{name}:2376", address=name)
        ChangeRun.objects.create(
            change=change, host=host, state="planned", files=[{"path": "/x", "diff": "d"}]
        )
    with pytest.raises(QueueUnavailable):
        approval.start_apply(change, admin)
    assert sorted(change.runs.values_list("state", "reason")) == [("failed", NOT_QUEUED)] * 2
    change.refresh_from_db()
    assert change.status == ChangeStatus.FAILED
    assert approval.may_apply(change, admin) and not outcome.nothing_to_apply(change.runs.all())


@pytest.mark.django_db
def test_a_redelivered_vm_action_fails_the_row_its_dead_worker_left_running(
    project: Project, provisioner: Any
) -> None:
    task = VmTask.objects.create(vm=_vm(project), action="power_on", actor=provisioner, state="running")
    assert vsphere_tasks.run_vm_action(task.pk) == VmTask.State.ERROR
    task.refresh_from_db()
    assert task.error == vsphere_tasks.WORKER_STOPPED and task.finished
    assert AuditEntry.objects.filter(action="vm.power_on.failed").count() == 1
    # Delivered yet again: ended already, nothing more is done or recorded.
    assert vsphere_tasks.run_vm_action(task.pk) == VmTask.State.ERROR
    assert AuditEntry.objects.filter(action="vm.power_on.failed").count() == 1


@pytest.mark.django_db
def test_a_redelivered_deploy_fails_the_deploy_its_dead_worker_left_running(
    project: Project, provisioner: Any
) -> None:
    deploy = Deploy.objects.create(
        host=_host(project),
        actor=provisioner,
        token="tok",
        spec={"image": "busybox"},
        environment=json.dumps({"PASSWORD": "s3cret"}),
        state=Deploy.State.RUNNING,
    )
    assert fleet_tasks.deploy_container(deploy.pk) == fleet_tasks.WORKER_STOPPED
    deploy.refresh_from_db()
    assert (deploy.state, deploy.outcome) == (Deploy.State.ERROR, fleet_tasks.WORKER_STOPPED)
    assert str(deploy.environment or "") == ""
    assert fleet_tasks.deploy_container(deploy.pk) == "deploy gone or taken"


def _provisioned(project: Project, provisioner: Any, *states: str) -> list[ProvisionedVm]:
    request = ProvisionRequest.objects.create(project=project, requester=provisioner, name_pattern="web-{n}")
    expires = timezone.now() + timedelta(hours=1)
    return [
        ProvisionedVm.objects.create(
            request=request,
            name=f"web-{n}",
            instance_id=f"portal-{request.pk}-{n}",
            token_hash=f"h-{request.pk}-{n}",
            token_expires=expires,
            state=state,
        )
        for n, state in enumerate(states, 1)
    ]


@pytest.mark.django_db
def test_a_redelivered_provisioning_request_fails_the_vm_its_dead_worker_was_cloning(
    project: Project, provisioner: Any
) -> None:
    cloning, still_waiting = _provisioned(project, provisioner, "cloning", "waiting")
    provision_tasks.run_request(cloning.request_id, "http://portal.test/")
    cloning.refresh_from_db()
    still_waiting.refresh_from_db()
    assert cloning.state == ProvisionedVm.State.FAILED and "the worker stopped" in cloning.detail.lower()
    assert still_waiting.state == ProvisionedVm.State.WAITING  # its own deadline ends it, if it must


@pytest.mark.django_db
def test_the_sweep_fails_work_stuck_queued_or_running_and_leaves_the_rest(
    project: Project, provisioner: Any
) -> None:
    vm = _vm(project)
    host = vm.host
    assert host is not None
    long_ago = timezone.now() - timedelta(hours=4)
    stuck_tasks = [VmTask.objects.create(vm=vm, action="power_on", state=s) for s in ("queued", "running")]
    fresh_task = VmTask.objects.create(vm=vm, action="power_on", state="running")
    done_task = VmTask.objects.create(vm=vm, action="power_on", state="success")
    VmTask.objects.exclude(pk=fresh_task.pk).update(started=long_ago)
    stuck_deploys = [
        Deploy.objects.create(host=host, actor=provisioner, token=s, state=s) for s in ("queued", "running")
    ]
    fresh_deploy = Deploy.objects.create(host=host, token="fresh", state="running")
    Deploy.objects.exclude(pk=fresh_deploy.pk).update(created=long_ago)
    queued_vm, cloning_vm, waiting_vm = _provisioned(project, provisioner, "queued", "cloning", "waiting")
    ProvisionedVm.objects.update(updated=long_ago)
    (fresh_vm,) = _provisioned(project, provisioner, "queued")
    stuck_apps = [
        Application.objects.create(project=project, name=s, source="", state=s)
        for s in ("queued", "deploying")
    ]
    fresh_app = Application.objects.create(project=project, name="fresh", source="", state="deploying")
    Application.objects.exclude(pk=fresh_app.pk).update(updated=long_ago)

    swept = stale_work.sweep()
    assert (swept.vm_tasks, swept.deploys, swept.provisioned_vms, swept.applications) == (2, 2, 2, 2)
    queued_app, deploying_app = (Application.objects.get(pk=a.pk) for a in stuck_apps)
    assert queued_app.state == "failed" and "no task worker took this" in queued_app.outcome
    assert deploying_app.state == "failed" and deploying_app.outcome == app_tasks.WORKER_STOPPED
    assert Application.objects.get(pk=fresh_app.pk).state == "deploying"
    # A deploy message that still arrives for a swept application runs nothing.
    assert app_tasks.deploy_application(queued_app.pk) == "gone or taken"

    queued_task, running_task = (VmTask.objects.get(pk=t.pk) for t in stuck_tasks)
    assert queued_task.state == "error" and "no task worker took this" in queued_task.error
    assert running_task.state == "error" and running_task.error == vsphere_tasks.WORKER_STOPPED
    queued_deploy, running_deploy = (Deploy.objects.get(pk=d.pk) for d in stuck_deploys)
    assert queued_deploy.state == "error" and "no task worker took this" in queued_deploy.outcome
    assert running_deploy.outcome == fleet_tasks.WORKER_STOPPED
    states = dict(ProvisionedVm.objects.values_list("pk", "state"))
    assert states[queued_vm.pk] == states[cloning_vm.pk] == "failed"
    assert states[waiting_vm.pk] == "waiting" and states[fresh_vm.pk] == "queued"
    assert VmTask.objects.get(pk=fresh_task.pk).state == "running"
    assert VmTask.objects.get(pk=done_task.pk).state == "success"
    assert Deploy.objects.get(pk=fresh_deploy.pk).state == "running"
    # A message that still arrives for a swept row runs nothing.
    assert vsphere_tasks.run_vm_action(queued_task.pk) == "error"
    assert stale_work.sweep().total == 0


def test_the_sweep_runs_as_a_watcher() -> None:
    assert watchers.WATCHERS["stale_work"] is stale_work.watch_stale_work


@pytest.mark.django_db(transaction=True)
def test_an_enrollment_with_the_broker_down_still_enrolls_and_leaves_its_guestinfo_to_the_sweep(
    waiting: tuple[ProvisionedVm, str],  # noqa: F811 -- the fixture
    broker_down: None,
) -> None:
    """The phone-home spends the host's one-time token: failing it because the task that clears
    the clone's guestinfo could not be queued would strand the host. It enrolls; the sweep
    clears the guestinfo later (tests/security/test_p1_per_host_credentials.py does, on vcsim)."""
    from hosts.provision import flow

    pvm, token = waiting
    # A clone in vCenter whose inventory confirms the address the host connects from.
    ProvisionedVm.objects.filter(pk=pvm.pk).update(moref="vm-42")
    VirtualMachine.objects.create(
        vcenter=pvm.request.vcenter, moref="vm-42", name="new-1", ip_address="10.9.0.7"
    )
    response = phone_home(Client(), token)

    assert response.status_code == 200, response.content
    pvm.refresh_from_db()
    assert pvm.state == ProvisionedVm.State.ENROLLED and pvm.guestinfo_to_clear
    assert Host.objects.filter(pk=pvm.host_id, enrolled=True).exists()

    # vCenter unreachable (test.vc): tried once per interval, and not told each time.
    later = timezone.now() + flow.GUESTINFO_RETRY
    assert flow.clear_left_guestinfo(now=later) == []
    assert flow.clear_left_guestinfo(now=later) == [], "tried again within the interval"
    pvm.refresh_from_db()
    assert pvm.guestinfo_to_clear and pvm.updated == later
    assert not Event.objects.filter(object_id=str(pvm.pk)).exists()

    # A day on, still refused: given up, with what is left to do by hand.
    assert flow.clear_left_guestinfo(now=later + flow.GUESTINFO_GIVE_UP) == []
    pvm.refresh_from_db()
    assert not pvm.guestinfo_to_clear
    event = Event.objects.get(object_id=str(pvm.pk))
    assert "gave up clearing its guestinfo" in event.message and event.severity == "warning"
