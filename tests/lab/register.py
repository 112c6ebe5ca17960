"""`make lab`: put a running lab's peers into the local portal, through the portal's own code.

Trust is pinned the way a person would pin it, by comparing what the peer serves
with what the lab reports (the lab is the one place that knows the right answer),
then saved as the Add forms save it. Running it again updates the same rows (the
lab's ports change with every `up`). Everything lands in a project named "Lab",
which may provision on the lab's vCenter.

The Photon-like hosts come up as a fresh Photon host does, dockerd on its socket only;
the portal then moves their Docker API to TLS with its own CA through its own change
flow (profile "Docker remote API", planned and applied as the Admin), so every host
is reached the way enrolled hosts are, and shows ON.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

#: What the lab's Photon hosts get from the portal: the Docker remote API on 2376, TLS only.
DOCKER_TLS_PROFILE = "Docker remote API"
APPLY_TIMEOUT = 300.0
#: The trust a host's engine had from an earlier lab: dropped, the new host has none of it.
FORGET_TLS = dict.fromkeys(
    ("tls_ca", "tls_fingerprint", "tls_client_cert", "tls_client_key", "client_ca_cert", "client_ca_key"), ""
)


def register(document: dict[str, Any], *, shared: bool = False) -> dict[str, int]:
    """Register every peer of ``document``; ``shared`` peers (the test suite's session lab,
    which other tests use as they are) are only registered and pinned: no busybox pushed to
    their registry, no Docker TLS change applied to their hosts."""
    from hosts.fleet import endpoint as engine_endpoint
    from hosts.fleet import trust as engine_trust
    from hosts.models import Host, ProvisionQuota, VCenter
    from hosts.vsphere import client as vsphere
    from portal import audit
    from portal.models import Project
    from registry.models import Registry

    project, _ = Project.objects.get_or_create(
        name="Lab", defaults={"description": "The lab's real peers (make lab)"}
    )
    counts = {"vcenters": 0, "engines": 0, "registries": 0, "ssh_hosts": 0}

    info = document["vcenter"]
    certificate = vsphere.fetch_certificate(*vsphere.endpoint(info["url"]))
    if certificate.thumbprint != info["thumbprint"]:
        raise RuntimeError("vcsim serves another certificate than the lab reports: not pinning it")
    vcenter, _ = VCenter.objects.update_or_create(
        name="Lab vCenter",
        defaults={
            "url": info["url"].removesuffix("/sdk"),
            "username": info["user"],
            "password": info["password"],
            "certificate": certificate.pem,
            "thumbprint": certificate.thumbprint,
        },
    )
    audit.record("vcenter.register", obj=vcenter, actor_name="make lab")
    counts["vcenters"] += 1
    read_inventory(vcenter)
    quota, _ = ProvisionQuota.objects.get_or_create(project=project)
    quota.vcenters.add(vcenter)

    for info in document["docker"]:
        endpoint = engine_endpoint.parse_endpoint(info["url"])
        fields: dict[str, Any] = {"docker_url": info["url"], "enabled": True}
        if info["tls"]:
            trust = engine_trust.Trust(
                ca=Path(info["tls"]["ca"]).read_text(),
                client_cert=Path(info["tls"]["cert"]).read_text(),
                client_key=Path(info["tls"]["key"]).read_text(),
            )
            served = engine_trust.peer_certificate(endpoint, trust)
            fields.update(
                tls_ca=trust.ca,
                tls_client_cert=trust.client_cert,
                tls_client_key=trust.client_key,
                tls_fingerprint=served.fingerprint,
                insecure=False,
            )
        else:
            fields.update(insecure=True)  # the lab's plain engine, flagged as every insecure one is
        host, _ = Host.objects.update_or_create(project=project, name=f"lab-{info['name']}", defaults=fields)
        audit.record("host.register", obj=host, project=project, actor_name="make lab")
        counts["engines"] += 1

    if not shared:
        publish_busybox(document["registries"])
    for info in document["registries"]:
        harbor = info["kind"] == "harbor"
        auth = Registry.Auth.ANONYMOUS
        if info.get("user"):
            auth = Registry.Auth.ROBOT if harbor else Registry.Auth.BASIC
        registry, _ = Registry.objects.update_or_create(
            name=f"Lab {info.get('name') or info['kind']}",
            defaults={
                "kind": Registry.Kind.HARBOR if harbor else Registry.Kind.DISTRIBUTION,
                "url": info["url"],
                "auth": auth,
                "username": info.get("user") or "",
                "password": info.get("password") or "",
            },
        )
        registry.projects.add(project)
        audit.record("registry.register", obj=registry, project=project, actor_name="make lab")
        counts["registries"] += 1

    photon_hosts = []
    for info in document["hosts"]:
        # Reached over SSH, the engine too (through its socket) until the TLS change below.
        host, _ = Host.objects.update_or_create(
            project=project,
            name=info["name"],
            defaults={
                **FORGET_TLS,
                "docker_url": f"ssh://{info['user']}@{info['address']}:{info['port']}",
                "insecure": False,
                "address": info["address"],
                "ssh_port": info["port"],
                "ssh_user": info["user"],
                "ssh_private_key": Path(info["private_key"]).read_text(),
                "ssh_host_key": info["host_key"],
                "enabled": True,
            },
        )
        audit.record("host.register", obj=host, project=project, actor_name="make lab")
        counts["ssh_hosts"] += 1
        if info["full"]:
            photon_hosts.append(host)
    if photon_hosts and not shared:
        move_engines_to_tls(project, photon_hosts)
    check_every_host(project)
    return counts


def check_every_host(project: Any) -> None:
    """One health check of each lab host now, so the fleet page opens with their state."""
    from hosts.fleet import tasks as fleet_tasks
    from hosts.models import Host

    for host_id in Host.objects.filter(project=project).values_list("pk", flat=True):
        fleet_tasks.check_host(host_id)


def publish_busybox(registries: list[dict[str, Any]]) -> str:
    """Push the lab's busybox image to the anonymous registry: the seeded images carry no
    program, and the walkthrough deploys one that runs. Returns its reference."""
    from tests.lab import images

    anonymous = next(r for r in registries if r["kind"] == "distribution" and r["auth"] == "none")
    archive = images.build()
    reference = f"{urlsplit(anonymous['url']).netloc}/{archive.busybox_ref}"
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            f"docker-archive:{archive.path}:{archive.busybox_ref}",
            f"docker://{reference}",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return reference


def read_inventory(vcenter: Any) -> None:
    """vCenter's VMs and templates in the portal now, not at the watcher's first pass."""
    from hosts.vsphere import tasks as vsphere_tasks

    vsphere_tasks.sync_vcenter(vcenter.pk)


def move_engines_to_tls(project: Any, hosts: list[Any]) -> None:
    """Plan and apply the Docker TLS profile on ``hosts`` as the Admin, as a person would.

    The apply runs in the portal's tasks (threads of this process on the embedded
    default, the workers with REDIS_URL); this waits until every host has ended."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from hosts.changes import approval, planning
    from hosts.management.change_commands import wait_settled
    from hosts.models import Host
    from hosts.models.changes import ChangeStatus, Profile

    # Its one-time password goes to the terminal, beside the lab's other messages (stdout is --json's).
    call_command("ensure_admin", stdout=sys.stderr)
    admin = get_user_model().objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
    profile, _ = Profile.objects.update_or_create(
        project=project,
        name=DOCKER_TLS_PROFILE,
        defaults={
            "settings": {"docker_api": {"enabled": True}},
            "description": "The Docker API on tcp/2376, TLS with the portal's CA (make lab).",
            "created_by": admin,
        },
    )
    profile.hosts.add(*hosts)
    change = planning.profile_change(profile, admin, title="make lab: Docker API over TLS")
    planning.plan(change, hosts)
    change.refresh_from_db()
    if change.status != ChangeStatus.PLANNED:
        raise RuntimeError(f"the Docker TLS change was not planned: {change.get_status_display()}")
    approval.start_apply(change, admin)
    if not wait_settled([change], APPLY_TIMEOUT):
        raise RuntimeError(
            f"the Docker TLS change did not end within {APPLY_TIMEOUT:.0f} s (no task worker?)"
        )
    change.refresh_from_db()
    if change.status != ChangeStatus.APPLIED:
        failed = {r.host.name: r.reason for r in change.runs.select_related("host") if r.reason}
        raise RuntimeError(f"the Docker TLS change ended {change.get_status_display()}: {failed}")
    for host in Host.objects.filter(pk__in=[h.pk for h in hosts]):
        if not host.docker_url.startswith("tcp://") or not host.tls_fingerprint:
            raise RuntimeError(f"{host.name}: the Docker TLS change left no TLS endpoint")
