"""People in projects: adding a member, and for an Admin, making the person first.

One rule for the project page and anything else that adds people. A person made here is
a local user with no password yet: they choose one through the one-time link the Admin
who made them is shown once (portal.accounts, as on the People page)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from . import access, accounts, audit
from .models import Membership, Project, Role
from .refused import Refused


@dataclass(frozen=True)
class Added:
    membership: Membership
    #: Only when the person was made now: the path of their one-time link to choose a
    #: password, shown once to the Admin (never in a repr or a log).
    password_link: str | None = field(default=None, repr=False)


class UnknownPerson(Refused):
    """No one of that name may sign in; says who can fix it, and whether the actor can."""

    def __init__(self, username: str, *, may_create: bool) -> None:
        if may_create:
            message = f"No one named {username} can sign in yet. Create them here, or check the spelling."
        else:
            admins = ", ".join(admin_names()) or "an Admin"
            message = f"No one named {username} can sign in yet: Admins make people ({admins}); ask one."
        super().__init__(message, field="username", status=400)
        self.username = username
        self.may_create = may_create


def admin_names(limit: int = 3) -> list[str]:
    users = get_user_model().objects.filter(is_superuser=True, is_active=True).order_by("username")
    return list(users.values_list("username", flat=True)[:limit])


def add_member(project: Project, actor: Any, username: str, role: str, *, create: bool = False) -> Added:
    """Make ``username`` a member of ``project`` with ``role``; with ``create`` an Admin
    may make the person first. Refuses (changing nothing) with the sentence to show."""
    access.require(actor, "project.manage_members", project)
    if role not in Role.values:
        raise Refused("Choose one of the roles.", field="role", status=400)
    username = username.strip()
    try:
        UnicodeUsernameValidator()(username)
    except ValidationError:
        raise Refused(
            "A user name is letters, digits and @ . + - _ only.", field="username", status=400
        ) from None
    users = get_user_model()
    user = users.objects.filter(username=username, is_active=True).first()
    link = None
    may_create = access.can(actor, "user.create")
    if user is None and users.objects.filter(username=username).exists():
        raise Refused(f"{username} is deactivated: an Admin can activate them again.", field="username")
    if user is None and not (create and may_create):
        raise UnknownPerson(username, may_create=may_create)
    try:
        with transaction.atomic():
            if user is None:
                user = users.objects.create_user(username=username, password=None)  # unusable
                audit.record("user.create", obj=user, project=project, actor=actor, after={"user": username})
                link = accounts.password_link(user)
            membership = Membership.objects.create(project=project, user=user, role=role)
    except IntegrityError:
        raise Refused(f"{username} is already a member; change their role instead.", status=409) from None
    audit.record(
        "project.member_add",
        obj=membership,
        project=project,
        actor=actor,
        after={"user": username, "role": role},
    )
    return Added(membership, link)


def change_role(membership: Membership, actor: Any, role: str) -> Membership:
    """Give ``membership`` another role (a Project admin of its project; one of the roles),
    audited: the project page and the API both call this."""
    project = membership.project
    access.require(actor, "project.manage_members", project)
    if role not in Role.values:
        raise Refused("Choose one of the roles.", field="role", status=400)
    before = {"user": membership.user.get_username(), "role": membership.role}
    membership.role = role
    membership.save(update_fields=["role"])
    audit.record(
        "project.member_role",
        obj=membership,
        project=project,
        actor=actor,
        before=before,
        after={**before, "role": role},
    )
    return membership


def remove_member(membership: Membership, actor: Any) -> None:
    """Take ``membership``'s person out of its project (the person stays), audited: the
    project page and the API both call this."""
    project = membership.project
    access.require(actor, "project.manage_members", project)
    before = {"user": membership.user.get_username(), "role": membership.role}
    membership.delete()
    audit.record("project.member_remove", project=project, actor=actor, before=before)
