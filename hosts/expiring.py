"""The hosts app's expiring trust for portal.expiry: each host's Docker client certificate,
its own client CA and the engine CA it pins, and each vCenter's pinned certificate.

A host's certificates are its project's to renew (Rotate credentials on the host's page when
the portal issued them, the host's edit page when a person gave them); a vCenter is an
Admin's (its certificate is vCenter's own: confirm the new one when vCenter renews it)."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

from django.urls import reverse

from hosts.models import Host, VCenter
from portal.expiry import Expiring, certificate


def hosts(until: datetime.datetime) -> Iterator[Expiring]:
    # Every host's certificates are read: their expiry is in the PEM, not in a column.
    rows = Host.objects.exclude(tls_client_cert="", client_ca_cert="", tls_ca="").only(
        "pk", "name", "project_id", "tls_client_cert", "client_ca_cert", "tls_ca"
    )
    for host in rows.iterator(chunk_size=500):
        # Issued by the portal: rotating credentials renews the certificate and its CA.
        issued = bool(host.client_ca_cert)
        renew = reverse("hosts:host" if issued else "hosts:edit", args=[host.pk])
        fields = (
            ("client_cert", host.tls_client_cert, "Docker client certificate"),
            ("client_ca", host.client_ca_cert, "Docker client CA"),
            ("engine_ca", host.tls_ca, "pinned Docker engine CA"),
        )
        for name, pem, what in fields:
            yield from certificate(
                pem,
                key=f"hosts.host:{host.pk}:{name}",
                what=f"the {what} of host {host.name}",
                project_id=host.project_id,
                renew=renew,
                obj=host,
            )


def vcenters(until: datetime.datetime) -> Iterator[Expiring]:
    renew = reverse("hosts:vcenters")
    for vcenter in VCenter.objects.exclude(certificate="").only("pk", "name", "certificate"):
        yield from certificate(
            vcenter.certificate,
            key=f"hosts.vcenter:{vcenter.pk}:certificate",
            what=f"the pinned certificate of vCenter {vcenter.name}",
            project_id=None,
            renew=renew,
            obj=vcenter,
        )
