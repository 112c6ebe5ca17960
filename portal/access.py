"""The one place that decides who may do what. Deny by default.

Roles (Admiral's): the global Admin (a superuser: everything, everywhere), and per
project a Project admin, a Provisioner or a Viewer. Views, consumers, tasks and
the API ask ``can``/``require`` with an action name from ``ACTIONS``; an action
not listed there is refused to everyone but Admins, so a new feature that forgets
to declare itself fails closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeGuard

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.urls import reverse

from . import dashboard
from .models import Membership, Project, Role

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
    from django.contrib.auth.models import User as SignedInUser
    from django.http import HttpRequest

    User = AbstractBaseUser | AnonymousUser

_RANK = {Role.VIEWER: 1, Role.PROVISIONER: 2, Role.PROJECT_ADMIN: 3}

#: Project-scoped actions and the least role that may do them.
ACTIONS: dict[str, Role] = {
    "project.view": Role.VIEWER,
    "project.manage_members": Role.PROJECT_ADMIN,
    "audit.view": Role.VIEWER,
    "events.view": Role.VIEWER,
    # Hosts (issue 4): see, act on containers / deploy, add / edit / remove.
    "host.view": Role.VIEWER,
    "host.operate": Role.PROVISIONER,
    "host.manage": Role.PROJECT_ADMIN,
    # vSphere (issue 5): see VMs of the project's hosts, power and snapshot them.
    "vm.view": Role.VIEWER,
    "vm.operate": Role.PROVISIONER,
    # Registries (issue 6): browse, delete tags and artifacts.
    "registry.view": Role.VIEWER,
    "registry.delete": Role.PROJECT_ADMIN,
    # Configuration changes (issue 7): see, plan, approve / apply.
    "change.view": Role.VIEWER,
    "change.plan": Role.PROVISIONER,
    "change.approve": Role.PROJECT_ADMIN,
    # Provisioning (issue 9): see requests, clone new hosts within the project's quota.
    "provision.view": Role.VIEWER,
    "provision.request": Role.PROVISIONER,
    # Applications (issue 16): see templates and applications, deploy and operate them, keep the catalog.
    "app.view": Role.VIEWER,
    "app.deploy": Role.PROVISIONER,
    "app.manage": Role.PROJECT_ADMIN,
    # Notifications (alerts): a project's channels, rules and delivery log (they hold addresses).
    "alerts.manage": Role.PROJECT_ADMIN,
}

#: Actions on the portal as a whole: any signed-in user, or Admins only. (An
#: Admin may do anything, so ADMIN_ACTIONS declares rather than grants: it names
#: the Admin-only actions so code and tests can refer to them.)
SIGNED_IN_ACTIONS = frozenset({"portal.use"})
ADMIN_ACTIONS = frozenset(
    {
        "portal.admin",
        "audit.view_all",
        # The status page: services and the processes behind the portal.
        "portal.status",
        # Only an Admin may accept a plain, unauthenticated Docker endpoint (tcp://...:2375).
        "host.allow_insecure",
        # vCenters and registries are added by Admins and shared with projects.
        "vcenter.manage",
        "registry.manage",
        # People who may sign in are made by Admins (Project admins add existing people).
        "user.create",
        # ... and disabled, deleted, or given a link to choose a new password (portal.accounts).
        "user.manage",
        # Linking a VM to a host puts it in the host's project: by provisioning's proof or an Admin.
        "vm.link",
        "provision.quota",  # where a project may clone and how much: set by Admins
        "alerts.manage_global",  # channels and rules for every project's events
    }
)


@dataclass(frozen=True)
class TokenScope:
    """What an API token narrows its user's rights to (portal.api_auth binds it to the
    request's user). Writes are refused before any view runs (portal.api_policy); the
    project is honoured here, so every check and every queryset built from
    ``projects`` keeps inside it, an Admin's token included."""

    read_only: bool = False
    project_id: int | None = None


_SCOPE = "_portal_token_scope"


def bind_token_scope(user: Any, scope: TokenScope) -> None:
    setattr(user, _SCOPE, scope)


def token_scope(user: User | None) -> TokenScope | None:
    return getattr(user, _SCOPE, None)


def _scoped_project(user: User | None) -> int | None:
    scope = token_scope(user)
    return scope.project_id if scope is not None else None


def is_signed_in(user: User | None) -> TypeGuard[SignedInUser]:
    # Authenticated means the AUTH_USER_MODEL, Django's User (settings set no other).
    return bool(user is not None and user.is_authenticated and user.is_active)


def is_admin(user: User | None) -> bool:
    # An Admin's token for one project is no Admin: it reaches that project alone.
    return is_signed_in(user) and bool(getattr(user, "is_superuser", False)) and _scoped_project(user) is None


def role_in(user: User | None, project: Project | int) -> Role | None:
    if not is_signed_in(user):
        return None
    project_id = project.pk if isinstance(project, Project) else project
    scoped = _scoped_project(user)
    if scoped is not None and project_id != scoped:
        return None
    role = Membership.objects.filter(user=user, project_id=project_id).values_list("role", flat=True).first()
    return Role(role) if role else None


def can(user: User | None, action: str, project: Project | int | None = None) -> bool:
    if not is_signed_in(user):
        return False
    scoped = _scoped_project(user)
    if scoped is not None and action not in SIGNED_IN_ACTIONS:
        project_id = project.pk if isinstance(project, Project) else project
        if project_id != scoped or action not in ACTIONS:
            return False
        if getattr(user, "is_superuser", False):
            return True
    if is_admin(user):
        return True
    if action in SIGNED_IN_ACTIONS:
        return True
    required = ACTIONS.get(action)
    if required is None or project is None:
        return False
    role = role_in(user, project)
    return role is not None and _RANK[role] >= _RANK[required]


def require(user: User | None, action: str, project: Project | int | None = None) -> None:
    if not can(user, action, project):
        raise PermissionDenied(f"not allowed: {action}")


def projects(user: User | None, action: str = "project.view") -> QuerySet[Project]:
    """The projects in which ``user`` may do ``action``."""
    if is_admin(user):
        return Project.objects.all()
    required = ACTIONS.get(action)
    if not is_signed_in(user) or required is None:
        return Project.objects.none()
    scoped = _scoped_project(user)
    if scoped is not None and getattr(user, "is_superuser", False):
        return Project.objects.filter(pk=scoped)
    roles = [role for role, rank in _RANK.items() if rank >= _RANK[required]]
    found = Project.objects.filter(memberships__user=user, memberships__role__in=roles)
    if scoped is not None:
        found = found.filter(pk=scoped)
    return found.distinct()


def can_subscribe(user: User | None, topic: str) -> bool:
    """May ``user`` receive the live events of ``topic``? (see portal.live)

    ``audit:…`` and ``events:…`` are the trail and the event log: ``:all`` for
    Admins, ``:project:ID`` for the project's members (``audit:user:ID`` for
    oneself); ``project:ID:…`` is anything live inside a project.
    """
    if not is_signed_in(user):
        return False
    kind, _, rest = topic.partition(":")
    scope, _, ident = rest.partition(":")
    if kind in {"audit", "events"}:
        if rest == "all":
            return is_admin(user)
        if kind == "audit" and scope == "user":
            return is_admin(user) or ident == str(user.pk)
        if scope == "project" and ident.isdigit():
            return can(user, f"{kind}.view", int(ident))
        return False
    if kind == "requests":  # one's own requests on My work (portal.work)
        return scope == "user" and ident == str(user.pk)
    if kind == "project":
        return scope.isdigit() and can(user, "project.view", int(scope))
    if kind == "hosts":  # the whole fleet's host rows and counters, as the Admins' dashboard shows them
        return rest == "all" and is_admin(user)
    if kind == "vsphere":  # the whole vSphere inventory, VMs in no project included
        return is_admin(user)
    return False


@dataclass
class NavItem:
    """A section in the header or the bar below it. Its badge (a count, e.g. approvals
    waiting) is read only when the header is drawn, not for every fragment rendered."""

    url_name: str
    label: str
    user: Any
    active: bool = False

    @cached_property
    def href(self) -> str:
        return reverse(self.url_name)

    @cached_property
    def badge(self) -> Any:
        return dashboard.badge_on(self.user, self.url_name)


def navigation(request: HttpRequest) -> dict[str, Any]:
    """Template context: the sections in the header (the work) and the bar below it
    (the people and records around it)."""
    user = getattr(request, "user", None)
    if not is_signed_in(user):
        return {"nav": [], "subnav": []}
    sections = [
        ("dashboard", "Dashboard"),
        ("work", "My work"),
        ("hosts:index", "Hosts"),
        ("hosts:vsphere", "vSphere"),
        ("hosts:provision", "Provisioning"),
        ("registry:index", "Registries"),
        ("hosts:changes", "Changes"),
        ("hosts:apps", "Applications"),
    ]
    records = [
        ("projects", "Projects"),
        ("events", "Events"),
        ("audit", "Audit"),
        ("api-tokens", "API tokens"),
        # Everyone: one's own alert e-mail; and the channels of the scopes one manages.
        ("alerts:index", "Alerts"),
    ]
    if is_admin(user):
        records.append(("people", "People"))
        records.append(("status", "Status"))
        # Single sign-on's page is reached from Directory's (the bar is full at 800 px).
        records.append(("directory:settings", "Directory"))
    if getattr(user, "is_staff", False):
        records.append(("admin:index", "Administration"))
    nav = [NavItem(name, label, user) for name, label in sections]
    subnav = [NavItem(name, label, user) for name, label in records]
    # A page is in the section whose address is the longest start of its own: a VM's
    # page is in vSphere (/hosts/vsphere/), not Hosts (/hosts/); the dashboard only at "/".
    within = [
        i
        for i in nav + subnav
        if request.path == i.href or (i.href != "/" and request.path.startswith(i.href))
    ]
    if within:
        max(within, key=lambda i: len(i.href)).active = True
    return {"nav": nav, "subnav": subnav}
