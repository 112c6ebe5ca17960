"""The templates' catalog: the rules the pages and the API both call to save, read, compare
and remove a project's application templates.

A save is checked whole before anything is written (``hosts.applications.compose.check``): a file
the portal could not honour is refused with every problem, key and line, and changes
nothing. Each save that changes the Compose file is a new version; the file is kept as
given, so an export gives back the very text that was saved.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Max, QuerySet

from hosts.applications import compose
from hosts.models import AppTemplate, TemplateVersion
from portal import access, audit
from portal.models import Project
from portal.refused import Refused

#: The longest Compose file a template keeps: ten times the largest seen in Compose's own examples.
MAX_SOURCE = 256 * 1024


def visible(user: Any) -> QuerySet[AppTemplate]:
    """The templates of the projects ``user`` may see applications in, newest version annotated."""
    return (
        AppTemplate.objects.filter(project__in=access.projects(user, "app.view"))
        .select_related("project")
        .annotate(latest=Max("versions__number"))
    )


@dataclass(frozen=True)
class Draft:
    """What a person gives to save a template (a new one, or a new version of one)."""

    name: str
    source: str
    description: str = ""
    note: str = ""


def check_source(source: str) -> dict[str, Any]:
    """The Compose file's model, or Refused with each problem (its key and line) in ``details``."""
    if not source.strip():
        raise Refused("The Compose file is empty.", field="compose_file", status=400)
    if len(source) > MAX_SOURCE:
        raise Refused(
            f"The Compose file is longer than {MAX_SOURCE // 1024} KiB.", field="compose_file", status=400
        )
    try:
        return compose.check(source)
    except compose.ComposeInvalid as exc:
        count = len(exc.problems)
        raise Refused(
            f"The Compose file has {count} problem{'s' if count != 1 else ''}; nothing was saved.",
            field="compose_file",
            status=400,
            details=[p.message for p in exc.problems],
        ) from None


def save(
    user: Any, draft: Draft, *, project: Project | None = None, template: AppTemplate | None = None
) -> TemplateVersion:
    """Create a template in ``project``, or save ``draft`` over ``template``: a new version when
    its Compose file differs from the newest one (the name and description change in place)."""
    target = template.project if template is not None else project
    if target is None:
        raise Refused("Choose a project.", field="project", status=400)
    access.require(user, "app.manage", target)
    name = draft.name.strip()
    if not name:
        raise Refused("Give the template a name.", field="name", status=400)
    check_source(draft.source)
    with transaction.atomic():
        same_name = AppTemplate.objects.filter(project=target, name=name)
        if template is not None:
            # Locked: two saves at once get versions n+1 and n+2, not the same number twice.
            template = AppTemplate.objects.select_for_update().get(pk=template.pk)
            same_name = same_name.exclude(pk=template.pk)
        if same_name.exists():
            raise Refused(f"A template named {name!r} exists in {target}.", field="name", status=409)
        if template is None:
            template = AppTemplate.objects.create(project=target, name=name, created_by=user)
        before = {"name": template.name, "description": template.description}
        template.name, template.description = name, draft.description.strip()
        template.save()
        latest = template.versions.first()
        if latest is not None and latest.source == draft.source:
            version = latest
        else:
            version = TemplateVersion.objects.create(
                template=template,
                number=(latest.number + 1) if latest else 1,
                source=draft.source,
                note=draft.note.strip()[:200],
                created_by=user,
            )
    audit.record(
        "app.template_save",
        obj=template,
        project=target,
        actor=user,
        before=before if latest is not None else None,
        after={"name": name, "description": template.description, "version": version.number},
    )
    return version


def variables_of(source: str) -> list[compose.Variable]:
    """The ${VARIABLES} of a saved Compose file; none when it no longer parses (a file saved by
    hand in the admin, or under older rules: a deploy then says why, with its lines)."""
    try:
        return compose.variables(source)
    except compose.ComposeInvalid:
        return []


def version_of(template: AppTemplate, number: int | None = None) -> TemplateVersion:
    """Version ``number`` of ``template`` (the newest when None)."""
    versions = template.versions.all()
    found = versions.filter(number=number).first() if number is not None else versions.first()
    if found is None:
        raise Refused(f"{template} has no version {number}.", field="version", status=404)
    return found


def diff(template: AppTemplate, older: int, newer: int) -> str:
    """The unified diff from version ``older`` to version ``newer`` of the Compose file."""
    a, b = version_of(template, older), version_of(template, newer)
    return "".join(
        difflib.unified_diff(
            a.source.splitlines(keepends=True),
            b.source.splitlines(keepends=True),
            fromfile=f"{template.name} v{a.number}",
            tofile=f"{template.name} v{b.number}",
        )
    )


def remove(user: Any, template: AppTemplate) -> None:
    """Remove the template and its versions (what it deployed is not touched)."""
    access.require(user, "app.manage", template.project_id)
    audit.record(
        "app.template_remove",
        obj=template,
        project=template.project,
        actor=user,
        before={"name": template.name, "versions": template.versions.count()},
    )
    template.delete()


def starter(image: str) -> str:
    """A one-service Compose file for ``image`` (a registry tag's "new template from this image")."""
    last = image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]
    service = "".join(c if c.isalnum() or c in "_-" else "-" for c in last.lower()).strip("-_") or "app"
    return f"services:\n  {service}:\n    image: {image}\n    restart: unless-stopped\n"
