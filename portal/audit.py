"""The audit trail, written in one place.

``record`` is the only writer of AuditEntry. The request (who, from where) is
taken from a context variable the middleware sets, so code deep in a task or a
signal handler records the same facts as a view. Sign-ins and the Django
admin's own change log are recorded here by signal handlers, not in each view.
"""

from __future__ import annotations

import contextvars
import datetime
from collections.abc import Callable
from typing import Any

from axes.signals import user_locked_out
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import models
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from . import live
from .models import AuditEntry, Project

#: What each recorded action is called on the trail. tests/test_audit_labels.py scans the
#: code for every ``record(...)`` and fails on an action that is missing here.
ACTION_LABELS = {
    "auth.login": "Signed in",
    "auth.logout": "Signed out",
    "auth.login_failed": "Sign-in failed",
    "auth.locked_out": "Sign-in locked out",
    "audit.prune": "Audit trail pruned",
    "project.create": "Project created",
    "project.member_add": "Member added",
    "project.member_role": "Member's role changed",
    "project.member_remove": "Member removed",
    "api_token.create": "API token created",
    "api_token.revoke": "API token revoked",
    "alerts.channel_create": "Alert channel created",
    "alerts.channel_delete": "Alert channel deleted",
    "alerts.channel_test": "Alert channel tested",
    "alerts.rule_create": "Alert rule created",
    "alerts.rule_delete": "Alert rule deleted",
    "alerts.email_opt_out": "Alert e-mail turned off",
    "alerts.email_opt_in": "Alert e-mail turned on",
    "host.add": "Host added",
    "host.change": "Host changed",
    "host.enable": "Host enabled",
    "host.disable": "Host disabled",
    "host.remove": "Host removed",
    "host.enroll": "Host enrolled",
    "host.credentials_rotated": "Host credentials rotated",
    "host.patches_refresh": "Host patch status refresh asked",
    "host.patches_refresh_fleet": "Fleet patch status refresh asked",
    "container.deploy": "Deploy requested",
    "container.deploy_result": "Deploy finished",
    "container.start": "Container start requested",
    "container.stop": "Container stop requested",
    "container.restart": "Container restart requested",
    "container.remove": "Container removed",
    "container.recreate": "Container recreate requested",
    "container.recreate_result": "Container recreate finished",
    "container.logs_download": "Container log downloaded",
    "container.console_start": "Container console opened",
    "container.console_end": "Container console closed",
    "image.pull": "Image pull requested",
    "image.remove": "Image removed",
    "image.prune": "Unused images pruned",
    "image.tag": "Image tagged",
    "volume.create": "Volume created",
    "volume.remove": "Volume removed",
    "volume.prune": "Unused volumes pruned",
    "network.create": "Network created",
    "network.remove": "Network removed",
    "network.prune": "Unused networks pruned",
    "change.profile_save": "Profile saved",
    "app.template_save": "Application template saved",
    "app.template_remove": "Application template removed",
    "app.deploy": "Application deploy requested",
    "app.update": "Application update requested",
    "app.roll_back": "Application roll back requested",
    "app.remove": "Application removal requested",
    "app.stop": "Application stop requested",
    "app.start": "Application start requested",
    "app.restart": "Application restart requested",
    "app.scale": "Application scale requested",
    "app.adopt": "Application adopted",
    "change.plan": "Change planned",
    "change.revert_plan": "Revert planned",
    "change.revert": "Revert requested",
    "change.approve": "Change approved",
    "change.reject": "Change rejected",
    "change.apply": "Change applying",
    "change.applied": "Change applied",
    "change.rollback": "Change rolled back",
    "change.failed": "Change failed",
    "patch.plan": "Patch change planned",
    "patch.submit": "Patch change submitted for approval",
    "patch.approve": "Patch change approved",
    "patch.reject": "Patch change rejected",
    "patch.apply": "Patch change applying",
    "patch.resume": "Patch change resumed",
    "patch.cancel": "Patch change cancelled",
    "patch.paused": "Patch change paused after a failure",
    "patch.host_applied": "Host patched",
    "patch.host_rolled_back": "Host patch rolled back",
    "patch.host_failed": "Host patch failed",
    "patch.snapshot_taken": "VM snapshot taken before patching",
    "patch.snapshot_removed": "VM snapshot removed after patching",
    "patch.snapshot_reverted": "VM reverted to its snapshot after a failed patch",
    "patch.window_add": "Maintenance window added",
    "patch.window_remove": "Maintenance window removed",
    "vcenter.add": "vCenter added",
    "vsphere.vm_linked": "VM linked to a host",
    "vsphere.vm_unlinked": "VM unlinked from its host",
    "vsphere.host_registered": "VM registered as a host",
    "vm.power_on": "VM powered on",
    "vm.power_off": "VM powered off",
    "vm.reset": "VM reset",
    "vm.shutdown_guest": "VM guest shut down",
    "vm.snapshot_create": "VM snapshot taken",
    "vm.snapshot_revert": "VM reverted to a snapshot",
    "vm.power_on.failed": "VM power on failed",
    "vm.power_off.failed": "VM power off failed",
    "vm.reset.failed": "VM reset failed",
    "vm.shutdown_guest.failed": "VM guest shutdown failed",
    "vm.snapshot_create.failed": "VM snapshot failed",
    "vm.snapshot_revert.failed": "VM snapshot revert failed",
    "provision.request": "Provisioning requested",
    "provision.kickstart": "Kickstart prepared",
    "provision.seed_iso": "Seed ISO made",
    "provision.attach_seed_iso": "Seed ISO attached",
    "provision.delete_vm": "Provisioned VM deleted",
    "provision.cancel_vm": "Provisioned VM cancelled",
    "provision.quota": "Provisioning quota set",
    "user.create": "Person created",
    "user.disable": "Person disabled",
    "user.enable": "Person enabled",
    "user.delete": "Person deleted",
    "user.password_reset": "Password reset by an Admin",
    "user.password_change": "Password changed",
    "user.sessions_end": "Signed out of other browsers",
    "registry.add": "Registry added",
    "registry.change": "Registry changed",
    "registry.remove": "Registry removed",
    "registry.delete_tag": "Image tag deleted",
    "registry.delete_artifact": "Image deleted",
    "directory.server_save": "Directory settings saved",
    "directory.mapping_add": "Directory group mapping added",
    "directory.mapping_remove": "Directory group mapping removed",
    "directory.member_add": "Member added by the directory",
    "directory.member_role": "Member's role changed by the directory",
    "directory.member_remove": "Member removed by the directory",
    "directory.admin_grant": "Admin rights given by the directory",
    "directory.admin_revoke": "Admin rights taken back by the directory",
    "directory.user_deactivate": "Person deactivated by the directory",
    "directory.user_reactivate": "Person reactivated by the directory",
    "sso.provider_save": "Single sign-on settings saved",
    "sso.mapping_add": "Single sign-on group mapping added",
    "sso.mapping_remove": "Single sign-on group mapping removed",
    "sso.signin": "Signed in with single sign-on",
    "sso.signin_refused": "Single sign-on refused",
    "sso.user_create": "Person made by single sign-on",
    "sso.member_add": "Member added by single sign-on",
    "sso.member_role": "Member's role changed by single sign-on",
    "sso.member_remove": "Member removed by single sign-on",
    "sso.admin_grant": "Admin rights given by single sign-on",
    "sso.admin_revoke": "Admin rights taken back by single sign-on",
}

#: The Django admin's own changes (``admin.<model>.<verb>``), for whatever model.
_ADMIN_VERBS = {"add": "added", "change": "changed", "delete": "deleted"}


def known_label(action: str) -> str | None:
    """The label ``action`` was given (None for one nobody named)."""
    if action in ACTION_LABELS:
        return ACTION_LABELS[action]
    area, _, rest = action.partition(".")
    model, _, verb = rest.rpartition(".")
    if area == "admin" and model and verb in _ADMIN_VERBS:
        return f"Admin: {model.replace('_', ' ')} {_ADMIN_VERBS[verb]}"
    return None


def label_for(action: str) -> str:
    """What the trail shows for ``action``: its label, or, for one recorded before it had
    one (an older entry, a removed feature), its code as words: ``a.b_c`` -> "A: b c"."""
    known = known_label(action)
    if known is not None:
        return known
    area, _, rest = action.partition(".")
    words = rest.replace(".", " ").replace("_", " ")
    return f"{area.capitalize()}: {words}" if words else area.capitalize()


_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar("audit_request", default=None)


class AuditContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


def client_address(request: HttpRequest | None) -> str | None:
    # Behind a proxy, configure it to set REMOTE_ADDR (daphne --proxy-headers):
    # X-Forwarded-For from the client is not to be trusted here.
    return request.META.get("REMOTE_ADDR") or None if request is not None else None


def record(
    action: str,
    *,
    obj: models.Model | None = None,
    project: Project | None = None,
    before: Any = None,
    after: Any = None,
    actor: Any = None,
    actor_name: str = "",
    request: HttpRequest | None = None,
) -> AuditEntry:
    request = request or _request.get()
    if actor is None and request is not None and getattr(request, "user", None) is not None:
        actor = request.user if request.user.is_authenticated else None
    entry = AuditEntry.objects.create(
        actor=actor,
        actor_name=actor_name or (actor.get_username() if actor is not None else ""),
        address=client_address(request),
        action=action,
        project=project,
        project_name=project.name if project is not None else "",
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        before=before,
        after=after,
    )
    _announce(entry)
    return entry


def prune_trail(
    older_than: datetime.datetime, *, actor_name: str = "retention", events: int | None = None
) -> int:
    """Drop the entries older than ``older_than``, then record that it was done and how many
    (and how many events went with them, when the caller pruned those too)."""
    pruned = AuditEntry.objects.prune(older_than)
    after: dict[str, Any] = {"pruned": pruned, "older_than": older_than.isoformat()}
    if events is not None:
        after["events_pruned"] = events
    record("audit.prune", actor_name=actor_name, after=after)
    return pruned


def topics_for(entry: AuditEntry) -> list[str]:
    topics = ["audit:all"]
    if entry.actor_id:
        topics.append(f"audit:user:{entry.actor_id}")
    if entry.project_id:
        topics.append(f"audit:project:{entry.project_id}")
    return topics


def _announce(entry: AuditEntry) -> None:
    html = render_to_string("portal/partials/audit_row.html", {"entry": entry})
    data = {"id": entry.pk, "action": entry.action, "actor": entry.actor_name, "object": entry.object_repr}
    for topic in topics_for(entry):
        live.publish(topic, html=html, data=data)


@receiver(user_logged_in)
def _logged_in(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    record("auth.login", actor=user, request=request)


@receiver(user_logged_out)
def _logged_out(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    if user is not None:
        record("auth.logout", actor=user, request=request)


@receiver(user_login_failed)
def _login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    if request is not None and getattr(request, "portal_locked_out", False):
        return  # refused during a lockout without reading the password: the lockout is recorded once
    # Only the name tried: Django has already masked the password in credentials.
    record("auth.login_failed", actor_name=str(credentials.get("username", ""))[:150], request=request)


@receiver(user_locked_out)
def _locked_out(sender: Any, request: HttpRequest, username: str | None = None, **kwargs: Any) -> None:
    # Axes signals this for the failure that locks, and again for each refusal after it.
    if getattr(request, "portal_locked_out", False):
        return
    record(
        "auth.locked_out",
        actor_name=str(username or "")[:150],
        request=request,
        after={"failures": getattr(request, "axes_failures_since_start", None)},
    )


#: Models whose ModelAdmin records its own deletes (portal.admin.AuditedDeletes): Django
#: logs "delete selected" of several objects with bulk_create, which sends no signal.
_deletes_recorded_by_admin: set[str] = set()


def deletes_recorded_by_admin(model: type[models.Model]) -> None:
    _deletes_recorded_by_admin.add(model._meta.label_lower)


def record_admin_deletion(obj: models.Model, *, bulk: bool) -> AuditEntry:
    """One entry for one object deleted in the admin; called before the delete, while it has its id."""
    project = getattr(obj, "project", None)
    return record(
        f"admin.{obj._meta.model_name}.delete",
        obj=obj,
        project=project if isinstance(project, Project) else None,
        before={"object": str(obj)[:200], "how": "delete selected" if bulk else "delete"},
    )


@receiver(post_save, sender=LogEntry)
def _admin_change(sender: Any, instance: LogEntry, created: bool, **kwargs: Any) -> None:
    if not created:
        return
    if instance.action_flag == DELETION and instance.content_type is not None:
        deleted = instance.content_type.model_class()
        if deleted is not None and deleted._meta.label_lower in _deletes_recorded_by_admin:
            return  # recorded per object by the admin itself, single or bulk alike
    verb = {1: "add", 2: "change", 3: "delete"}.get(instance.action_flag, "change")
    model = instance.content_type.model if instance.content_type is not None else "object"
    record(
        f"admin.{model}.{verb}",
        actor=instance.user,
        after={"object": instance.object_repr, "change": instance.get_change_message()},
    )
