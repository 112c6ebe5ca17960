"""What an Admin does with the directory settings; each change checked and audited here
(the views only translate)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from portal import access, audit, queueing
from portal.models import Project, Role
from portal.refused import Refused

from . import groups, probe
from .backend import current_server
from .connection import normalize_dn
from .forms import ADMIN, MappingForm, ServerForm
from .models import DirectoryServer, GroupMapping
from .tasks import sync_directory

#: What the trail keeps of the settings (never the password: only that it changed).
_SHOWN = ["enabled", "url", "bind_dn", "user_search_base", "user_filter", "group_search_base", "group_type"]


def the_server() -> DirectoryServer | None:
    return DirectoryServer.objects.order_by("pk").first()


def _settings(server: DirectoryServer | None) -> dict[str, Any] | None:
    return None if server is None else {name: getattr(server, name) for name in _SHOWN}


def save_server(actor: Any, form: ServerForm) -> DirectoryServer:
    """Save valid settings (the form was checked by the caller: ``form.is_valid()``)."""
    access.require(actor, "portal.admin")
    before = _settings(the_server()) if form.instance.pk else None
    with transaction.atomic():
        server = form.save()
        after: dict[str, Any] = _settings(server) or {}
        if "bind_password" in form.changed_data:
            after["bind_password"] = "changed"  # noqa: S105 - a word for the trail, not a password
        audit.record("directory.server_save", obj=server, actor=actor, before=before, after=after)
    return server


def test_connection(actor: Any, form: ServerForm) -> probe.Probe:
    """Test the settings in the form, saved or not (an empty password: the stored one)."""
    access.require(actor, "portal.admin")
    if not form.is_valid():
        return probe.Probe(False, "Fix the settings marked below first.")
    if not form.instance.bind_password:
        return probe.Probe(False, "Enter the bind password.")
    return probe.test_connection(form.instance)


def add_mapping(actor: Any, server: DirectoryServer, form: MappingForm) -> GroupMapping:
    access.require(actor, "portal.admin")
    data = form.cleaned_data
    admin = data["target"] == ADMIN
    project = None if admin else Project.objects.filter(pk=data["target"]).first()
    if not admin and project is None:
        raise Refused("That project no longer exists.", field="target", status=400)
    return _map(actor, server, data["group_dn"], project, "" if admin else data["role"])


def add_project_group(actor: Any, project: Project, group: str, role: str) -> GroupMapping:
    """A Project admin gives the members of a directory group (its name or DN) a role in
    their project; the group is looked up now, so a typo is said at once."""
    access.require(actor, "project.manage_members", project)
    if role not in Role.values:
        raise Refused("Choose one of the roles.", field="role", status=400)
    server = current_server()
    if server is None:
        raise Refused("No directory is set up: an Admin sets one up under Directory.")
    mapping = _map(actor, server, groups.find(server, group), project, role)
    # Its members get the role now rather than at the next periodic sync.
    queueing.enqueue_or_leave(sync_directory)
    return mapping


def _map(
    actor: Any, server: DirectoryServer, group_dn: str, project: Project | None, role: str
) -> GroupMapping:
    """``project`` None: the group's members are portal Admins."""
    admin = project is None
    same = [
        m
        for m in server.mappings.filter(admin=admin, project=project)
        if normalize_dn(m.group_dn) == normalize_dn(group_dn)
    ]
    if same:
        raise Refused("That group is already mapped there; remove it first to change it.", status=409)
    mapping = GroupMapping.objects.create(
        server=server, group_dn=group_dn, project=project, role=role, admin=admin
    )
    audit.record(
        "directory.mapping_add", obj=mapping, project=project, actor=actor, after={"mapping": str(mapping)}
    )
    return mapping


def project_groups(actor: Any, project: Project) -> QuerySet[GroupMapping]:
    """The directory groups that give roles in ``project``, for anyone who sees it."""
    access.require(actor, "project.view", project)
    return GroupMapping.objects.filter(project=project).order_by("group_dn")


def remove_project_group(actor: Any, project: Project, pk: int) -> None:
    """A mapping of another project (a forged id) is not found, as if it did not exist."""
    access.require(actor, "project.manage_members", project)
    mapping = GroupMapping.objects.filter(project=project, pk=pk).first()
    if mapping is None:
        raise Refused("That group gives no role in this project.", status=404)
    _unmap(actor, mapping)
    queueing.enqueue_or_leave(sync_directory)


def remove_mapping(actor: Any, mapping: GroupMapping) -> None:
    access.require(actor, "portal.admin")
    _unmap(actor, mapping)


def _unmap(actor: Any, mapping: GroupMapping) -> None:
    """Removed now; the roles it gave go at each person's next sign-in or sync."""
    with transaction.atomic():
        audit.record(
            "directory.mapping_remove",
            obj=mapping,
            project=mapping.project,
            actor=actor,
            before={"mapping": str(mapping)},
        )
        mapping.delete()
