"""Who sees what: one queryset base for everything that belongs to a project.

``Model.objects.visible_to(user, action)`` is what the UI, the API, My work and the
live topics all ask, so a rule is written once and lives beside the model, not in a
view. ``get_or_404`` is the single-object form: an object the user may not see is a
404 (its existence is not revealed); one they see but may not act on is a 403.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self, TypeVar

from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404

from . import access

M = TypeVar("M", bound=models.Model)


class VisibleQuerySet(models.QuerySet[M]):
    #: The lookup from the model to its project ("project", "host__project", "projects").
    project_path: ClassVar[str] = "project"
    #: The action that lets a member see one.
    view_action: ClassVar[str] = ""
    #: One object shared with several projects (a registry): rows would repeat.
    many_projects: ClassVar[bool] = False
    #: What a person reads when the object is not there for them.
    not_found: ClassVar[str] = "Not found."

    def visible_to(self, user: Any, action: str = "") -> Self:
        """The objects ``user`` may see, or (``action``) may do that to."""
        if access.is_admin(user):
            return self.all()
        found = self.filter(**{f"{self.project_path}__in": access.projects(user, action or self.view_action)})
        return found.distinct() if self.many_projects else found

    def project_of(self, obj: M) -> int | None:
        """The project whose roles decide about ``obj`` (None: no project, Admins only)."""
        return getattr(obj, "project_id", None)

    def get_or_404(self, user: Any, pk: int | str, action: str = "") -> M:
        """The object ``pk`` for ``user``: 404 unless they may see it; with ``action``,
        403 when they see it but may not do that."""
        if not str(pk).isdigit():
            raise Http404(self.not_found)
        obj = self.filter(pk=int(pk)).first()
        project = self.project_of(obj) if obj is not None else None
        if obj is None or not access.can(user, self.view_action, project):
            raise Http404(self.not_found)
        if action and not access.can(user, action, project):
            raise PermissionDenied(f"not allowed: {action}")
        return obj
