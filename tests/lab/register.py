"""`make lab`: put a running lab's peers into the local portal, through the portal's own code.

Trust is pinned the way a person would pin it, by comparing what the peer serves
with what the lab reports (the lab is the one place that knows the right answer),
then saved as the Add forms save it. Running it again updates the same rows (the
lab's ports change with every `up`). Everything lands in a project named "Lab".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def register(document: dict[str, Any]) -> dict[str, int]:
    from hosts.fleet import endpoint as engine_endpoint
    from hosts.fleet import trust as engine_trust
    from hosts.models import Host, VCenter
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

    for info in document["hosts"]:
        # Reached over SSH for configuration; their engine answers on the network only
        # once a Docker TLS change is pushed to them (Changes), as on a fresh Photon host.
        host, _ = Host.objects.update_or_create(
            project=project,
            name=info["name"],
            defaults={
                "docker_url": f"tcp://{info['address']}:2376",
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
    return counts
