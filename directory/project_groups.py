"""The "Directory groups" section of a project's page: which groups give roles in the
project, and for its Project admins the form to add or remove one (portal.project_sections)."""

from __future__ import annotations

from typing import Any

from django import forms

from portal import access
from portal.forms import ClarityForm
from portal.models import Project, Role

from . import services
from .backend import current_server


class ProjectGroupForm(ClarityForm, forms.Form):
    group = forms.CharField(label="Group", max_length=500, help_text="Its name (cn) or DN")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


def section(user: Any, project: Project) -> dict[str, Any] | None:
    """Shown where a directory is enabled, or where groups still give roles here."""
    mappings = list(services.project_groups(user, project))
    enabled = current_server() is not None
    if not (enabled or mappings):
        return None
    manage = access.can(user, "project.manage_members", project)
    # Removing stays possible with the directory off; adding needs it, to find the group.
    return {
        "mappings": mappings,
        "form": ProjectGroupForm() if manage and enabled else None,
        "can_manage": manage,
    }
