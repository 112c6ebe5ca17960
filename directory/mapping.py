"""Groups to portal rights: which roles a set of groups gives, and applying them to one
person. One rule for every source of groups (the directory here, single sign-on's groups
claim in sso), each with its own marks and audit actions. Only what a source made is
changed or removed; a membership made by hand is left as it is, and Admin rights are taken
back only where a mapping gave them (a local Admin's never: the last local Admin cannot be
locked out this way)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.db import models, transaction
from django.utils import timezone

from portal import audit
from portal.models import Membership, Role

from .connection import normalize_dn
from .models import DirectoryAccount, DirectoryMembership, DirectoryServer

#: Least to most: when two groups map one person into one project, the higher role wins.
_RANK = {Role.VIEWER: 1, Role.PROVISIONER: 2, Role.PROJECT_ADMIN: 3}


@dataclass
class Grants:
    roles: dict[int, str] = field(default_factory=dict)
    admin: bool = False


class Granting(Protocol):
    """A mapping row whose group matched: what it gives."""

    admin: bool
    project_id: int | None
    role: str


class Account(Protocol):
    """A person's link to the source (DirectoryAccount, sso's SsoAccount)."""

    admin_granted: bool
    last_sync: Any

    def save(self, *, update_fields: list[str]) -> None: ...


#: What each change is called on the audit trail, per source (literal: the audit-label
#: test reads these tables).
DIRECTORY_ACTIONS = {
    "member_add": "directory.member_add",
    "member_role": "directory.member_role",
    "member_remove": "directory.member_remove",
    "admin_grant": "directory.admin_grant",
    "admin_revoke": "directory.admin_revoke",
}


def _directory_record(change: str, **details: Any) -> None:
    audit.record(DIRECTORY_ACTIONS.get(change, "directory.member_add"), **details)


@dataclass(frozen=True)
class Source:
    """Where rights come from: the model marking the memberships it made (a one-to-one
    ``membership``), and how its changes are recorded (``record(change, **audit)``)."""

    marker: type[models.Model]
    record: Callable[..., None]


DIRECTORY = Source(marker=DirectoryMembership, record=_directory_record)


def combine(matched: Iterable[Granting]) -> Grants:
    """The rights the mappings whose group matched give together: Admin if any gives it,
    and per project the highest role."""
    grants = Grants()
    for mapping in matched:
        if mapping.admin:
            grants.admin = True
        elif mapping.project_id is not None:
            held = grants.roles.get(mapping.project_id)
            if held is None or _RANK[Role(mapping.role)] > _RANK[Role(held)]:
                grants.roles[mapping.project_id] = mapping.role
    return grants


def grants_for(server: DirectoryServer, group_dns: Iterable[str]) -> Grants:
    groups = {normalize_dn(dn) for dn in group_dns}
    return combine(m for m in server.mappings.all() if normalize_dn(m.group_dn) in groups)


def link(user: Any, dn: str) -> DirectoryAccount:
    account, _ = DirectoryAccount.objects.get_or_create(user=user, defaults={"dn": dn})
    if account.dn != dn:
        account.dn = dn
        account.save(update_fields=["dn"])
    return account


@transaction.atomic
def apply(user: Any, account: Account, grants: Grants, source: Source = DIRECTORY) -> None:
    """Make the memberships and Admin rights ``source`` gave ``user`` what ``grants`` say."""
    held = {m.project_id: m for m in Membership.objects.filter(user=user).select_related("project")}
    made = set(
        source.marker._default_manager.filter(membership__user=user).values_list("membership_id", flat=True)
    )
    for project_id, membership in held.items():
        if membership.pk not in made:
            continue  # made by hand (or by another source): never changed here
        wanted = grants.roles.get(project_id)
        if wanted is None:
            source.record(
                "member_remove",
                obj=membership,
                project=membership.project,
                before={"user": user.username, "role": membership.role},
            )
            membership.delete()
        elif wanted != membership.role:
            before = membership.role
            membership.role = wanted
            membership.save(update_fields=["role"])
            source.record(
                "member_role",
                obj=membership,
                project=membership.project,
                before={"user": user.username, "role": before},
                after={"user": user.username, "role": wanted},
            )
    for project_id, role in grants.roles.items():
        if project_id in held:
            continue
        membership = Membership.objects.create(user=user, project_id=project_id, role=role)
        source.marker._default_manager.create(membership=membership)
        source.record(
            "member_add",
            obj=membership,
            project=membership.project,
            after={"user": user.username, "role": role},
        )
    _apply_admin(user, account, grants.admin, source)
    account.last_sync = timezone.now()
    account.save(update_fields=["last_sync"])


def _apply_admin(user: Any, account: Account, admin: bool, source: Source) -> None:
    if admin and not user.is_superuser:
        user.is_superuser = user.is_staff = True
        user.save(update_fields=["is_superuser", "is_staff"])
        account.admin_granted = True
        account.save(update_fields=["admin_granted"])
        source.record("admin_grant", obj=user, after={"user": user.username})
    elif not admin and user.is_superuser and account.admin_granted:
        user.is_superuser = user.is_staff = False
        user.save(update_fields=["is_superuser", "is_staff"])
        account.admin_granted = False
        account.save(update_fields=["admin_granted"])
        source.record("admin_revoke", obj=user, before={"user": user.username})


def deactivate(user: Any, account: DirectoryAccount, why: str) -> None:
    """The directory no longer lets this person in: signed out everywhere at the next request."""
    if not user.is_active:
        return
    user.is_active = False
    user.save(update_fields=["is_active"])
    account.deactivated = True
    account.save(update_fields=["deactivated"])
    audit.record("directory.user_deactivate", obj=user, after={"user": user.username, "why": why})


def reactivate(user: Any, account: DirectoryAccount) -> None:
    if user.is_active or not account.deactivated:
        return
    user.is_active = True
    user.save(update_fields=["is_active"])
    account.deactivated = False
    account.save(update_fields=["deactivated"])
    audit.record("directory.user_reactivate", obj=user, after={"user": user.username})
