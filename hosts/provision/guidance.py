"""What to do next when provisioning cannot go on yet: a person in no project, a Viewer, an
Admin with no project (the provisioning list), a project that may clone in no vCenter or
a vCenter with no template (the request form). Each says who can unblock it, and links
there when the person reading can do it themselves."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.urls import reverse

from hosts.models import VCenter
from portal import access


@dataclass(frozen=True)
class NextStep:
    text: str
    #: Where to do it, for someone who can (empty: someone else must).
    link: str = ""
    link_text: str = ""


def _either(names: Sequence[str]) -> str:
    """a / a or b / a, b or c."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def on_list(user: Any) -> NextStep | None:
    """Why the provisioning list offers no way to request hosts, and what to do; None if it does."""
    if access.projects(user, "provision.request").exists():
        return None
    if access.is_admin(user):  # an Admin may request in every project: there is none
        return NextStep(
            "There is no project to provision in yet.", reverse("project-create"), "Create a project first"
        )
    viewing = list(
        access.projects(user, "provision.view").order_by("name").values_list("name", flat=True)[:5]
    )
    if not viewing:
        return NextStep("You are in no project yet: ask an Admin to add you to one.")
    return NextStep(
        f"Viewers see requests; a Provisioner or Project admin of {_either(viewing)} can request hosts."
    )


def on_form(user: Any, vcenters_without_templates: Iterable[VCenter]) -> list[NextStep]:
    """What keeps the request form from offering a vCenter or a template."""
    admin = access.is_admin(user)
    # No enabled vCenter on its quota (or no quota at all): nothing to clone in.
    stuck = access.projects(user, "provision.request").exclude(provision_quota__vcenters__enabled=True)
    steps = [
        NextStep(
            f"Project {project} may not provision on any vCenter yet: "
            "an Admin gives it a provisioning quota.",
            reverse("hosts:provision_quota", args=[project.pk]) if admin else "",
            f"Set {project}'s quota",
        )
        for project in stuck.order_by("name")
    ]
    steps += [
        NextStep(
            f"No Photon OS template in {vcenter}: mark a Photon VM as a template in vSphere, "
            "or an Admin lists one on the quota.",
            reverse("hosts:provision_quotas") if admin else "",
            "Quotas",
        )
        for vcenter in vcenters_without_templates
    ]
    return steps
