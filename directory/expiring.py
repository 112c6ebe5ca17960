"""The directory app's expiring trust for portal.expiry: the CA pinned for the LDAP server
(when it lapses, nobody from the directory can sign in). An Admin's to renew."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

from django.urls import reverse

from directory.models import DirectoryServer
from portal.expiry import Expiring, certificate


def server_ca(until: datetime.datetime) -> Iterator[Expiring]:
    # A directory that is off signs nobody in: its CA lapsing stops nothing.
    servers = DirectoryServer.objects.filter(enabled=True).exclude(ca_certificate="")
    for server in servers.only("pk", "url", "ca_certificate"):
        yield from certificate(
            server.ca_certificate,
            key=f"directory.directoryserver:{server.pk}:ca",
            what=f"the CA certificate pinned for the directory {server.url}",
            project_id=None,
            renew=reverse("directory:settings"),
            obj=server,
        )
