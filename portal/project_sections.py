"""Sections the apps add to a project's page, below its members (the core knows no app:
an app registers a section in its registrations module)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .models import Project

#: The section's template context for this person on this project, or None: not shown.
Context = Callable[[Any, Project], "dict[str, Any] | None"]


@dataclass(frozen=True)
class Section:
    template: str
    context: Context


SECTIONS: list[Section] = []


def register(section: Section) -> None:
    if section not in SECTIONS:
        SECTIONS.append(section)


def for_project(user: Any, project: Project) -> list[dict[str, Any]]:
    """What the project page includes: each shown section's template and context."""
    shown = []
    for section in SECTIONS:
        context = section.context(user, project)
        if context is not None:
            shown.append({"template": section.template, "context": context})
    return shown
