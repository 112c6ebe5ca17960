"""Who may delete what in a registry: the registry's project-admin role AND a repository
under a prefix the registry grants that project (``DeletePrefix``). The views and any
other caller ask ``delete_grant``."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied

from portal import access
from portal.models import Project

from .models import DeletePrefix, Registry


def delete_grant(user: Any, registry: Registry, repository: str) -> Project | None:
    """The project through which ``user`` may delete ``repository`` in ``registry`` (for the
    audit trail; None for an Admin with no single project). Raises PermissionDenied, saying
    which prefixes are allowed, unless ``user`` is an Admin, or a Project admin of a project
    the registry is shared with AND the registry grants that project a prefix covering it."""
    if access.is_admin(user):
        return registry.projects.first() if registry.projects.count() == 1 else None
    projects = registry.projects.filter(pk__in=access.projects(user, "registry.delete"))
    if not projects.exists():
        raise PermissionDenied("not allowed: registry.delete")
    grants = list(
        DeletePrefix.objects.filter(registry=registry, project__in=projects).select_related("project")
    )
    for grant in grants:
        if grant.covers(repository):
            return grant.project
    if not grants:
        raise PermissionDenied(
            f"{registry.name} grants your projects no repository prefix to delete in: only Admins may "
            "delete there (an Admin sets prefixes per project on the registry)."
        )
    allowed = ", ".join(sorted({g.shown for g in grants}))
    raise PermissionDenied(
        f"In {registry.name} you may delete only in repositories under {allowed}; {repository} is not."
    )
