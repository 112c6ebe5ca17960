"""`make lab` registers the lab's peers through the portal's own code, pinned, idempotently.

Here on the suite's shared lab, which other tests use as it is: registered only (no image
pushed, no Docker TLS change). The whole of `make lab`, on a lab of its own, is
tests/lab/test_lab_cli.py and tests/e2e/test_walkthrough.py."""

from __future__ import annotations

from contextlib import closing

import pytest

from hosts.fleet import engine
from hosts.models import Host, VCenter
from hosts.vsphere import client as vsphere
from registry.models import Registry
from tests.lab.register import register

pytestmark = pytest.mark.django_db


def test_register_pins_every_peer_and_the_portal_can_use_them(
    lab_vcenter, lab_engines, lab_registries, lab_harbor, lab_hosts, monkeypatch
) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    document = {
        "vcenter": lab_vcenter,
        "docker": lab_engines,
        "registries": [*lab_registries, lab_harbor],
        "hosts": lab_hosts,
    }
    counts = register(document, shared=True)
    assert counts == {"vcenters": 1, "engines": 2, "registries": 4, "ssh_hosts": 2}
    assert register(document, shared=True) == counts  # again: the same rows, updated
    assert Host.objects.count() == 4 and Registry.objects.count() == 4 and VCenter.objects.count() == 1

    vcenter = VCenter.objects.get()
    assert vcenter.thumbprint == lab_vcenter["thumbprint"]
    with vsphere.session(vcenter) as si:
        assert vsphere.about(si)
    for host in Host.objects.filter(name__startswith="lab-"):
        with closing(engine.client_for(host)) as client:
            assert client.ping()
        assert host.insecure == (not host.tls_fingerprint)
    ssh = Host.objects.get(name=lab_hosts[0]["name"])
    assert ssh.ssh_host_key == lab_hosts[0]["host_key"] and ssh.ssh_private_key.startswith("-----BEGIN")
