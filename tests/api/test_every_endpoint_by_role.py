"""Every API endpoint, as each role, answers what portal.access allows: the API can never
do what the UI forbids.

Objects are set up so that an allowed action stops just after the access check at a
harmless point (a disabled host, a gone VM, a rejected change, a profile without
hosts): the answer then proves the check passed without anything running.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from hosts.models import (
    Application,
    AppTemplate,
    Deploy,
    Host,
    PatchChange,
    PatchChangeStatus,
    ProvisionedVm,
    ProvisionRequest,
    TemplateVersion,
    VCenter,
    VirtualMachine,
    VmTask,
)
from hosts.models.changes import Change, ChangeStatus, Profile
from portal import access, audit
from portal.api_urls import router
from portal.events import notify
from portal.models import Membership, Project, Role
from registry.models import Registry
from tests.api.common import client_for

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "viewer", "provisioner", "other_project_admin", "project_admin", "admin"]
CONTAINER = "ab" * 32
#: After the access check passed, these mean "allowed, and stopped where the setup said".
PASSED = {200, 202, 400, 409, 502}
TEMPLATE = "services:\n  web:\n    image: lab/busybox:1.35\n    environment: {T: '${T:?needed}'}\n"


@pytest.fixture
def world(make_user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    web, db = Project.objects.create(name="web"), Project.objects.create(name="db")
    people: dict[str, Any] = {
        "anonymous": None,
        "admin": make_user("admin", admin=True),
        "viewer": make_user("viewer", project=web, role=Role.VIEWER),
        "provisioner": make_user("provisioner", project=web, role=Role.PROVISIONER),
        "project_admin": make_user("pa", project=web, role=Role.PROJECT_ADMIN),
        "other_project_admin": make_user("other", project=db, role=Role.PROJECT_ADMIN),
    }
    # Unreachable on purpose: nothing may leave the machine, and an allowed read stops at 409/502.
    host = Host.objects.create(project=web, name="photon-web", docker_url="tcp://127.0.0.1:9", enabled=False)
    Host.objects.create(project=db, name="photon-db", docker_url="tcp://127.0.0.1:9", enabled=False)
    vcenter = VCenter.objects.create(name="vc", url="https://127.0.0.1:9", username="u", password="p")
    vm = VirtualMachine.objects.create(vcenter=vcenter, moref="vm-1", name="photon-web", host=host, gone=True)
    task = VmTask.objects.create(vm=vm, action="power_on", actor=people["admin"], state=VmTask.State.SUCCESS)
    profile = Profile.objects.create(project=web, name="hardened", settings={"sshd": {"MaxAuthTries": 3}})
    change = Change.objects.create(project=web, title="t", profile=profile, status=ChangeStatus.REJECTED)
    # A rejected patch change: every action on it stops at its state (409) once the right is there.
    patch_change = PatchChange.objects.create(
        project=web, title="p", selection={"kind": "security", "advisory_ids": [], "exclude": []},
        status=PatchChangeStatus.REJECTED,
    )  # fmt: skip
    registry = Registry.objects.create(name="local", url="http://127.0.0.1:9")
    registry.projects.add(web)
    # A template whose deploy stops at its missing variable (400); an application already removed
    # (its remove and roll back answer 409): nothing reaches an engine.
    template = AppTemplate.objects.create(project=web, name="shop")
    TemplateVersion.objects.create(template=template, number=1, source=TEMPLATE)
    application = Application.objects.create(
        project=web, name="shop", template=template, source=TEMPLATE, state=Application.State.REMOVED
    )
    deploy = Deploy.objects.create(
        host=host, actor=people["admin"], token="walk", spec={"image": "lab/busybox:1.35"}
    )
    # A request whose one VM enrolled already: cancelling it stops at 409, nothing is cloned.
    provision = ProvisionRequest.objects.create(
        project=web, requester=people["provisioner"], vcenter=vcenter, template="vm-t", name_pattern="p-{n}"
    )
    enrolled = ProvisionedVm.objects.create(
        request=provision,
        name="p-1",
        instance_id="walk-1",
        token_hash="walk-1",
        token_expires=timezone.now(),
        state=ProvisionedVm.State.ENROLLED,
    )
    entry = audit.record("host.add", obj=host, project=web, actor=people["project_admin"])
    event = notify("photon-web is OFF", severity="error", project=web)
    return {
        "audit": entry,
        "event": event,
        **people,
        "web": web,
        "host": host,
        "vcenter": vcenter,
        "vm": vm,
        "task": task,
        "profile": profile,
        "change": change,
        "patch_change": patch_change,
        "registry": registry,
        "template": template,
        "application": application,
        "deploy": deploy,
        "provision": provision,
        "enrolled": enrolled,
        "viewer_membership": Membership.objects.get(user=people["viewer"]),
        "bystander": Membership.objects.create(project=web, user=make_user("bystander"), role=Role.VIEWER),
    }


def endpoints(w: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any] | None, str, str]]:
    """(route name, method, url, body, visibility action, action needed) for every route."""
    h, vm, ch, pr, rg = w["host"].pk, w["vm"].pk, w["change"].pk, w["profile"].pk, w["registry"].pk
    pc = f"/api/patch-changes/{w['patch_change'].pk}"
    c = f"/api/hosts/{h}/containers/{CONTAINER}"
    repo = "?repository=library/photon"
    rv, vc = "registry.view", "vcenter.manage"
    a, e = w["audit"].pk, w["event"].pk
    t, ap = f"/api/app-templates/{w['template'].pk}", f"/api/applications/{w['application'].pk}"
    shop = {"name": "shop2"}
    plain = {"project": w["web"].pk, "name": "photon-new", "docker_url": "tcp://127.0.0.1:2375"}
    # Members: adding one already there (409), an unknown role (400); removing has no refusal
    # past the access check, so it removes the bystander, whom nothing else here uses (200).
    m, mv, mb = f"/api/projects/{w['web'].pk}/members", w["viewer_membership"].pk, w["bystander"].pk
    # Provisioning: a request in a vCenter on no quota stops at the form (400); the enrolled VM's
    # cancel at its state (409). Viewers and outsiders are refused before either.
    pv, pvm = f"/api/provision-requests/{w['provision'].pk}", w["enrolled"].pk
    ask = {"project": w["web"].pk, "vcenter": w["vcenter"].pk, "template": vm, "name_pattern": "p-{n}"}
    return [
        ("api-root", "get", "/api/", None, "portal.use", "portal.use"),
        ("api-provision-request-list", "get", "/api/provision-requests/", None, "portal.use", "portal.use"),
        ("api-provision-request-list", "post", "/api/provision-requests/", ask, "portal.use", "provision.request"),  # noqa: E501
        ("api-provision-request-detail", "get", f"{pv}/", None, "provision.view", "provision.view"),
        ("api-provision-request-vm-cancel", "post", f"{pv}/vms/{pvm}/cancel/", None, "provision.view", "provision.request"),  # noqa: E501
        ("api-project-list", "get", "/api/projects/", None, "portal.use", "portal.use"),
        ("api-project-detail", "get", f"/api/projects/{w['web'].pk}/", None, "project.view", "project.view"),
        ("api-project-member-list", "get", f"{m}/", None, "project.view", "project.view"),
        ("api-project-member-list", "post", f"{m}/", {"username": "viewer", "role": "viewer"}, "project.view", "project.manage_members"),  # noqa: E501
        ("api-project-member-detail", "get", f"{m}/{mv}/", None, "project.view", "project.view"),
        ("api-project-member-detail", "patch", f"{m}/{mv}/", {"role": "owner"}, "project.view", "project.manage_members"),  # noqa: E501
        ("api-project-member-detail", "delete", f"{m}/{mb}/", None, "project.view", "project.manage_members"),
        ("api-audit-list", "get", "/api/audit/", None, "portal.use", "portal.use"),
        ("api-audit-detail", "get", f"/api/audit/{a}/", None, "audit.view", "audit.view"),
        ("api-event-list", "get", "/api/events/", None, "portal.use", "portal.use"),
        ("api-event-detail", "get", f"/api/events/{e}/", None, "events.view", "events.view"),
        ("api-host-list", "get", "/api/hosts/", None, "portal.use", "portal.use"),
        ("api-fleet-search-list", "get", "/api/fleet-search/?q=photon", None, "portal.use", "portal.use"),
        # Adding stops at the form's refusal of a plain endpoint nobody allowed (400); verifying the
        # world's host at its address that nothing answers (502). Nothing is saved.
        ("api-host-list", "post", "/api/hosts/", plain, "portal.use", "host.manage"),
        ("api-host-verify-new", "post", "/api/hosts/verify/", plain, "portal.use", "host.manage"),
        ("api-host-verify", "post", f"/api/hosts/{h}/verify/", None, "host.view", "host.manage"),
        ("api-host-detail", "get", f"/api/hosts/{h}/", None, "host.view", "host.view"),
        # A deploy onto the disabled host is refused (409); the world's finished deploy is read.
        ("api-host-deploy", "post", f"/api/hosts/{h}/deploy/", {"image": "lab/busybox:1.35"}, "host.view", "host.operate"),  # noqa: E501
        ("api-host-deploy-detail", "get", f"/api/hosts/{h}/deploys/{w['deploy'].pk}/", None, "host.view", "host.view"),  # noqa: E501
        ("api-host-containers", "get", f"/api/hosts/{h}/containers/", None, "host.view", "host.view"),
        ("api-host-patches", "get", f"/api/hosts/{h}/patches/", None, "host.view", "host.view"),
        ("api-host-container", "get", f"{c}/", None, "host.view", "host.view"),
        ("api-host-container-start", "post", f"{c}/start/", None, "host.view", "host.operate"),
        ("api-host-container-stop", "post", f"{c}/stop/", None, "host.view", "host.operate"),
        ("api-host-container-restart", "post", f"{c}/restart/", None, "host.view", "host.operate"),
        ("api-host-container", "delete", f"{c}/", None, "host.view", "host.operate"),
        ("api-vcenter-list", "get", "/api/vcenters/", None, vc, vc),
        ("api-vcenter-detail", "get", f"/api/vcenters/{w['vcenter'].pk}/", None, vc, vc),
        # A vCenter that does not exist: an Admin gets 404, everyone else 403 first (as in the UI).
        ("api-vcenter-sync", "post", "/api/vcenters/999999/sync/", None, vc, vc),
        ("api-vm-list", "get", "/api/vms/", None, "portal.use", "portal.use"),
        ("api-vm-detail", "get", f"/api/vms/{vm}/", None, "vm.view", "vm.view"),
        ("api-vm-power", "post", f"/api/vms/{vm}/power/", {"action": "power_on"}, "vm.view", "vm.operate"),
        ("api-vm-task-list", "get", "/api/vm-tasks/", None, "portal.use", "portal.use"),
        ("api-vm-task-detail", "get", f"/api/vm-tasks/{w['task'].pk}/", None, "vm.view", "vm.view"),
        ("api-profile-list", "get", "/api/profiles/", None, "portal.use", "portal.use"),
        ("api-profile-detail", "get", f"/api/profiles/{pr}/", None, "change.view", "change.view"),
        ("api-profile-plan", "post", f"/api/profiles/{pr}/plan/", {}, "change.view", "change.plan"),
        ("api-change-list", "get", "/api/changes/", None, "portal.use", "portal.use"),
        ("api-change-detail", "get", f"/api/changes/{ch}/", None, "change.view", "change.view"),
        ("api-change-approve", "post", f"/api/changes/{ch}/approve/", None, "change.view", "change.approve"),
        ("api-change-reject", "post", f"/api/changes/{ch}/reject/", None, "change.view", "change.approve"),
        ("api-change-apply", "post", f"/api/changes/{ch}/apply/", {"confirm": 1}, "change.view", "change.plan"),  # noqa: E501
        # Patch changes: planning stops at the disabled host (409); the rejected change's actions
        # at its state (409). Cancelling a change past approval is a Project admin's. A plan names
        # its project in the body: one who cannot see the project gets 404, as for its changes.
        ("api-patch-change-list", "get", "/api/patch-changes/", None, "portal.use", "portal.use"),
        ("api-patch-change-list", "post", "/api/patch-changes/", {"project": w["web"].pk, "hosts": [h], "kind": "security"}, "change.view", "change.plan"),  # noqa: E501
        ("api-patch-change-detail", "get", f"{pc}/", None, "change.view", "change.view"),
        ("api-patch-change-submit", "post", f"{pc}/submit/", None, "change.view", "change.plan"),
        ("api-patch-change-approve", "post", f"{pc}/approve/", None, "change.view", "change.approve"),
        ("api-patch-change-reject", "post", f"{pc}/reject/", None, "change.view", "change.approve"),
        ("api-patch-change-apply", "post", f"{pc}/apply/", None, "change.view", "change.plan"),
        ("api-patch-change-resume", "post", f"{pc}/resume/", None, "change.view", "change.approve"),
        ("api-patch-change-cancel", "post", f"{pc}/cancel/", None, "change.view", "change.approve"),
        ("api-registry-list", "get", "/api/registries/", None, "portal.use", "portal.use"),
        ("api-registry-detail", "get", f"/api/registries/{rg}/", None, rv, rv),
        ("api-registry-repositories", "get", f"/api/registries/{rg}/repositories/", None, rv, rv),
        ("api-registry-tags", "get", f"/api/registries/{rg}/tags/{repo}", None, rv, rv),
        ("api-registry-tag-details", "get", f"/api/registries/{rg}/tag/{repo}&reference=1.0", None, rv, rv),
        ("api-app-template-list", "get", "/api/app-templates/", None, "portal.use", "portal.use"),
        ("api-app-template-detail", "get", f"{t}/", None, "app.view", "app.view"),
        ("api-app-template-versions", "get", f"{t}/versions/", None, "app.view", "app.view"),
        ("api-app-template-export", "get", f"{t}/export/", None, "app.view", "app.view"),
        ("api-app-template-plan", "post", f"{t}/plan/", shop, "app.view", "app.deploy"),
        ("api-app-template-deploy", "post", f"{t}/deploy/", shop, "app.view", "app.deploy"),
        ("api-app-template-detail", "put", f"{t}/", {}, "app.view", "app.manage"),
        ("api-application-list", "get", "/api/applications/", None, "portal.use", "portal.use"),
        ("api-application-detail", "get", f"{ap}/", None, "app.view", "app.view"),
        ("api-application-remove", "post", f"{ap}/remove/", {}, "app.view", "app.deploy"),
        ("api-application-roll-back", "post", f"{ap}/roll-back/", None, "app.view", "app.deploy"),
        ("api-application-operate", "post", f"{ap}/operate/", {"action": "stop"}, "app.view", "app.deploy"),
        ("api-application-scale", "post", f"{ap}/scale/", {"service": "web", "replicas": 2}, "app.view", "app.deploy"),  # noqa: E501
        ("api-application-update-version", "post", f"{ap}/update/", {}, "app.view", "app.deploy"),
    ]  # fmt: skip


def expected(user: Any, see: str, act: str, project: Project) -> set[int]:
    if user is None:
        return {401}
    if not access.can(user, see, project):
        # Admin-only areas (vCenters) answer 403, like the UI; a project's objects are hidden: 404.
        return {403} if see in access.ADMIN_ACTIONS else {404}
    if not access.can(user, act, project):
        return {403}
    return PASSED | {404} if act == "vcenter.manage" and "999999" in see else PASSED


def test_the_walk_covers_every_route_of_the_api(world) -> None:  # type: ignore[no-untyped-def]
    routed = {url.name for url in router.urls if url.name}
    walked = {name for name, *_ in endpoints(world)}
    assert routed <= walked, f"endpoints nobody walks: {sorted(routed - walked)}"


@pytest.mark.parametrize("role", ROLES)
def test_every_endpoint_answers_as_access_rules_say(world, role: str) -> None:  # type: ignore[no-untyped-def]
    user = world[role]
    api = client_for(user)
    wrong = []
    for name, method, url, body, see, act in endpoints(world):
        response = (
            getattr(api, method)(url, body, format="json") if body is not None else getattr(api, method)(url)
        )
        want = expected(user, see, act, world["web"])
        if name == "api-vcenter-sync" and access.is_admin(user):
            want = {404}
        if response.status_code not in want:
            wrong.append(f"{method.upper()} {url}: {response.status_code}, expected {sorted(want)}")
        # The one answer that is not JSON: a template's Compose file, exported as it was saved.
        media = (
            "application/yaml"
            if name == "api-app-template-export" and response.status_code == 200
            else "application/json"
        )
        assert response["Content-Type"].startswith(media), url
    assert not wrong, "\n".join(wrong)
    # Nothing was queued or changed by the allowed actions: each stopped at its setup's guard.
    assert Change.objects.get(pk=world["change"].pk).status == ChangeStatus.REJECTED
    assert VmTask.objects.count() == 1 and Change.objects.count() == 1
    assert Host.objects.count() == 2 and Deploy.objects.count() == 1
    assert ProvisionRequest.objects.count() == 1
    assert ProvisionedVm.objects.get().state == ProvisionedVm.State.ENROLLED


@pytest.mark.parametrize(
    ("role", "hosts", "profiles", "registries", "vms"),
    [
        ("admin", {"photon-web", "photon-db"}, {"hardened"}, {"local"}, set()),
        ("viewer", {"photon-web"}, {"hardened"}, {"local"}, set()),
        ("project_admin", {"photon-web"}, {"hardened"}, {"local"}, set()),
        ("other_project_admin", {"photon-db"}, set(), set(), set()),
    ],
)
def test_each_list_holds_only_what_the_role_may_see(world, role, hosts, profiles, registries, vms) -> None:  # type: ignore[no-untyped-def]
    api = client_for(world[role])

    def names(url: str) -> set[str]:
        response = api.get(url)
        assert response.status_code == 200, response.content
        return {row["name"] for row in response.json()["results"]}

    assert names("/api/hosts/") == hosts
    assert names("/api/profiles/") == profiles
    assert names("/api/registries/") == registries
    assert names("/api/vms/") == vms  # the only VM is gone from vCenter: lists leave it out
    changes = api.get("/api/changes/").json()["results"]
    assert [c["id"] for c in changes] == ([] if role == "other_project_admin" else [world["change"].pk])


def test_secrets_are_never_part_of_an_answer(world) -> None:  # type: ignore[no-untyped-def]
    world["host"].ssh_private_key = "-----BEGIN OPENSSH PRIVATE KEY-----secret"
    world["host"].save()
    api = client_for(world["admin"])
    for url in (
        f"/api/hosts/{world['host'].pk}/",
        f"/api/vcenters/{world['vcenter'].pk}/",
        "/api/registries/",
    ):
        body = api.get(url).content.decode()
        assert "secret" not in body and '"password"' not in body and "private_key" not in body
