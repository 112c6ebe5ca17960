"""The registry app's expiring trust for portal.expiry: each registry's pinned CA certificate.

A registry is shared with projects by an Admin and only an Admin edits it, so its items go
to global rules. Its password or robot secret has no expiry the portal knows (Harbor keeps a
robot's, and is not asked)."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

from django.urls import reverse

from portal.expiry import Expiring, certificate
from registry.models import Registry


def registries(until: datetime.datetime) -> Iterator[Expiring]:
    for registry in Registry.objects.exclude(ca_certificate="").only("pk", "name", "ca_certificate"):
        yield from certificate(
            registry.ca_certificate,
            key=f"registry.registry:{registry.pk}:ca",
            what=f"the CA certificate of registry {registry.name}",
            project_id=None,
            renew=reverse("registry:edit", args=[registry.pk]),
            obj=registry,
        )
