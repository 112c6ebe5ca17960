"""Adopting a Compose project started by hand on a project's hosts: it becomes one of the portal's
applications, with no template, its containers its placements, so the portal shows it and removes
it (by label, ``hosts.applications.deployments.request_remove``) like any other.

Nothing changes on the engines: the containers keep their names and labels. An adopted
application has no Compose file of its own: the portal writes a minimal one naming each
service's image (``compose_file``), its first line saying it was adopted (``Application.adopted``).
"""

from __future__ import annotations

from typing import Any

import yaml
from django.db import IntegrityError, transaction

from hosts.applications import discovery
from hosts.applications.deployments import NAME
from hosts.applications.discovery import FoundContainer
from hosts.models import Application, ApplicationPlacement, Host, HostStatus
from hosts.models.apps import ADOPTED
from portal import access, audit
from portal.models import Project
from portal.refused import Refused


def compose_file(name: str, containers: list[FoundContainer]) -> str:
    """A Compose file describing what was found: each service's image, and its replicas when several."""
    services: dict[str, dict[str, Any]] = {}
    for c in sorted(containers, key=lambda c: (c.service, c.number, c.host)):
        service = services.setdefault(c.service, {"image": c.image})
        replicas = sum(o.service == c.service for o in containers)
        if replicas > 1:
            service["deploy"] = {"replicas": replicas}
    hosts = ", ".join(sorted({c.host for c in containers}))
    header = (
        f"{ADOPTED}: the Compose project {name} found running on {hosts}.\n"
        "# It came with no Compose file: this one only names each service's image.\n"
    )
    return header + yaml.safe_dump({"services": services}, sort_keys=False, default_flow_style=False)


def _numbered(containers: list[FoundContainer]) -> list[tuple[FoundContainer, int]]:
    """Each container with its replica: its container-number, unless another host's container of the
    same service has it already (one project started by hand on two hosts): then the next free one."""
    taken: set[tuple[str, int]] = set()
    numbered = []
    for c in sorted(containers, key=lambda c: (c.service, c.number, c.host)):
        replica = max(c.number, 1)
        while (c.service, replica) in taken:
            replica += 1
        taken.add((c.service, replica))
        numbered.append((c, replica))
    return numbered


def _found(project: Project, name: str) -> list[FoundContainer]:
    """The project's containers labelled ``name``, every host of the project having answered; refused
    when another project's host runs some too (the application would be only a part of it)."""
    hosts = discovery.hosts_of([project.pk])
    by_host, errors = discovery.containers_on(hosts, fresh=True)
    if errors:
        raise Refused(
            f"Not every host of {project} answered ({'; '.join(errors)}): adopt {name} when they do, "
            "so that none of its containers is left out.",
            status=502,
        )
    found = [c for h in hosts for c in by_host.get(h.pk, {}).get(name, [])]
    if not found:
        raise Refused(f"No Compose project named {name!r} runs on the hosts of {project}.", status=404)
    # Cached answers are enough here: a hand-started project rarely moves between projects' hosts.
    others = Host.objects.filter(enabled=True, status=HostStatus.ON).exclude(project_id=project.pk)
    elsewhere, _ = discovery.containers_on(others)
    if any(name in projects for projects in elsewhere.values()):
        raise Refused(
            f"{name} also runs on hosts of another project: the portal cannot adopt a Compose project "
            "that spans projects.",
        )
    unlabelled = [c.name for c in found if not c.service]
    if unlabelled:
        raise Refused(f"Not Compose containers (no service label): {', '.join(unlabelled)}.", status=400)
    return found


def adopt(user: Any, project: Project, name: str) -> Application:
    """Make the Compose project ``name`` found on ``project``'s hosts one of its applications, running."""
    access.require(user, "app.deploy", project.pk)
    name = name.strip()
    if not NAME.match(name):
        raise Refused(f"{name!r} is not a name the portal can give an application.", field="name", status=400)
    taken = f"An application named {name!r} exists already: it is the portal's, not unmanaged."
    if Application.objects.filter(name=name).exclude(state=Application.State.REMOVED).exists():
        raise Refused(taken, field="name")
    found = _found(project, name)
    try:
        with transaction.atomic():
            application = Application.objects.create(
                project=project,
                name=name,
                source=compose_file(name, found),
                state=Application.State.RUNNING,
                created_by=user,
            )
            ApplicationPlacement.objects.bulk_create(
                ApplicationPlacement(
                    application=application,
                    service=c.service,
                    replica=replica,
                    host_id=c.host_id,
                    reason=f"adopted: found running as {c.name}"[:300],
                )
                for c, replica in _numbered(found)
            )
    except IntegrityError:  # adopted or deployed by someone else meanwhile
        raise Refused(taken, field="name") from None
    audit.record(
        "app.adopt",
        obj=application,
        project=project,
        actor=user,
        after={
            "containers": [f"{c.name} on {c.host}" for c in found],
            "services": sorted({c.service for c in found}),
        },
    )
    return application
