"""The Docker remote API moves to TLS with the portal's CA; the firewall opens and
closes ports as seen from outside the host; drift is found and brought back."""

from __future__ import annotations

import contextlib

import docker
import pytest
import requests

from hosts import ca as portal_ca
from hosts.changes import approval, planning, verify
from hosts.changes import drift as change_drift
from hosts.changes import revert as change_revert
from hosts.fleet import engine
from hosts.fleet import trust as engine_trust
from hosts.models import Change, ChangeRun, Drift, Host
from portal.models import Role
from tests.changes.conftest import lab_run, wait_runs
from tests.lab import common

pytestmark = pytest.mark.lab


def planned(project, user, host, settings, profile=None):  # type: ignore[no-untyped-def]
    change = Change.objects.create(
        project=project, title="test", settings=settings, created_by=user, profile=profile
    )
    planning.plan(change, [host])
    return change


def applied(change, user, host):  # type: ignore[no-untyped-def]
    approval.start_apply(change, user)
    return wait_runs(change)[host.name]


def test_docker_tls_change_answers_only_the_portals_certificate(
    change_lab, make_host, make_user, project, celery_worker_if_brokered, monkeypatch
) -> None:
    # The environment's CA bundles must not stand in for the portal's CA (lab notes).
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    lab = change_lab[0]
    assert lab["full"]
    host = make_host(lab, docker_url=f"ssh://root@{lab['address']}")
    admin = make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    address = str(lab["address"])
    assert not common.port_open(address, 2376)

    change = planned(project, admin, host, {"docker_api": {"enabled": True}})
    run = ChangeRun.objects.get(change=change)
    assert run.state == "planned", run.reason
    assert run.restarts == ["iptables", "docker"]
    paths = [f["path"] for f in run.files]
    assert paths == [
        "/etc/systemd/system/docker.service.d/10-photon-portal-remote-api.conf",
        "/etc/systemd/scripts/ip4save",
    ]
    assert "+-A INPUT -p tcp -m tcp --dport 2376 -j ACCEPT" in run.files[1]["diff"]
    assert "BEGIN PRIVATE KEY" not in str(run.files)

    run = applied(change, admin, host)
    assert run.state == "applied", f"{run.reason}\n{run.log}"
    host.refresh_from_db()
    assert host.docker_url == f"tcp://{address}:2376"
    assert host.tls_fingerprint and "BEGIN CERTIFICATE" in host.tls_ca and host.tls_client_key
    # The portal now talks TLS to it, with its own client certificate...
    with contextlib.closing(engine.client_for(host)) as client:
        assert client.info()["Name"] == lab["name"]
    # ...and a client without a certificate of the portal's CA gets nothing.
    with pytest.raises(
        (requests.exceptions.SSLError, requests.exceptions.ConnectionError, docker.errors.DockerException)
    ):
        anonymous = engine.connect(
            host.docker_url, engine_trust.Trust(ca=host.tls_ca, fingerprint=host.tls_fingerprint), timeout=5
        )
        anonymous.version()
    # dockerd trusts this host's own client CA only: a certificate the portal issued for
    # another host (from that host's client CA) opens nothing here.
    assert lab_run(lab, "cat /etc/docker/portal-tls/ca.pem").strip() == host.client_ca_cert.strip()
    assert str(host.client_ca_key).startswith("-----BEGIN")
    other = portal_ca.issue_client(portal_ca.new_client_ca("another-host"), "another-host")
    with pytest.raises(
        (requests.exceptions.SSLError, requests.exceptions.ConnectionError, docker.errors.DockerException)
    ):
        borrowed = engine_trust.Trust(
            ca=host.tls_ca, client_cert=other.cert, client_key=other.key, fingerprint=host.tls_fingerprint
        )
        engine.connect(host.docker_url, borrowed, timeout=5).version()
    assert not common.port_open(address, 2375)
    assert "--tlsverify" in lab_run(lab, "ps -o args= -C dockerd")

    # Undo: the drop-in, certificates and rule go, the endpoint in the portal is put back.
    revert = change_revert.start_revert(change, admin)
    planning.plan(revert, [host])
    revert_run = ChangeRun.objects.get(change=revert)
    assert revert_run.state == "planned", revert_run.reason
    assert "BEGIN PRIVATE KEY" not in str(revert_run.files)
    run = applied(revert, admin, host)
    assert run.state == "applied", f"{run.reason}\n{run.log}"
    host.refresh_from_db()
    assert host.docker_url == f"ssh://root@{address}"
    assert host.client_ca_cert == "" and str(host.client_ca_key) == ""
    left = lab_run(
        lab, "ls -A /etc/docker/portal-tls /etc/systemd/system/docker.service.d 2>/dev/null || true"
    )
    assert ".pem" not in left and ".conf" not in left
    common.wait_until(lambda: not common.port_open(address, 2376), timeout=10, what="2376 closed again")


def test_firewall_change_opens_and_closes_a_port_seen_from_outside(
    change_lab, make_host, make_user, project, celery_worker_if_brokered
) -> None:
    lab = change_lab[2]
    host = make_host(lab)
    admin = make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    address = str(lab["address"])
    lab_run(lab, "nohup python3 -m http.server 8080 >/dev/null 2>&1 &")
    try:
        common.wait_until(
            lambda: (
                "up"
                in lab_run(
                    lab,
                    "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 8080), 2)'"
                    " && echo up",
                )
            ),
            timeout=10,
            what="the listener inside the host",
        )
        assert not verify.port_answers(address, 8080, timeout=1.5)
        # Drift compares a host with the profiles applied there: this one, from here on.
        profile = host.project.profiles.create(name="web", settings={"firewall": {"open": ["tcp/8080"]}})
        profile.hosts.add(host)
        run = applied(planned(project, admin, host, profile.settings, profile), admin, host)
        assert run.state == "applied", f"{run.reason}\n{run.log}"
        assert requests.get(f"http://{address}:8080/", timeout=5).status_code == 200
        assert "tcp/8080 is open as seen from the portal" in run.log

        # Hand-edited on the host: the portal's drift check sees it, with the diff.
        assert [d.state for d in change_drift.check_drift([host])] == ["in_sync"]
        lab_run(lab, "sed -i '/--dport 8080/d' /etc/systemd/scripts/ip4save")
        (drift,) = change_drift.check_drift([host])
        assert drift.state == "drifted" and "+-A INPUT -p tcp -m tcp --dport 8080 -j ACCEPT" in drift.diff
        assert Drift.objects.get(host=host).state == "drifted"
        fix = planned(project, admin, host, profile.settings, profile)
        assert applied(fix, admin, host).state == "applied"
        # The repair resolved the row as it finished, before any new check.
        assert Drift.objects.get(host=host).state == "in_sync"
        assert [d.state for d in change_drift.check_drift([host])] == ["in_sync"]

        run = applied(planned(project, admin, host, {"firewall": {"closed": ["tcp/8080"]}}), admin, host)
        assert run.state == "applied", f"{run.reason}\n{run.log}"
        assert not verify.port_answers(address, 8080, timeout=1.5)
    finally:
        lab_run(lab, "pkill -f 'http.server 8080'", check=False)
    assert Host.objects.get(pk=host.pk).ssh_port == 22
