"""The lab's one entry point, as a newcomer uses it: up, use every peer, status, down, up again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sqlite3
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncssh
import docker
import pytest
import requests
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from tests.lab import common, seed
from tests.lab.fixtures import unavailable

PHOTON = "vmwarePhoton64Guest"


def lab(root: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    # `--register` writes to the portal of PORTAL_VAR_DIR: a scratch one, on the embedded default.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    return subprocess.run(
        [sys.executable, "-m", "tests.lab", *args],
        cwd=common.REPO,
        env={**env, "PORTAL_LAB_DIR": str(root), "PORTAL_VAR_DIR": str(root.parent / "portal-var")},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def lab_document(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    # As `make lab` runs it: every peer up, then registered in a (scratch) portal.
    root = tmp_path_factory.mktemp("lab-cli") / "lab"
    started = lab(root, "up", "--hosts", "2", "--vms", "100", "--json", "--register", timeout=600)
    if started.returncode != 0:
        lab(root, "down")
        unavailable(RuntimeError(started.stderr.strip()))
    try:
        document = json.loads(started.stdout)
    except ValueError:
        lab(root, "down")  # up worked but said more than its document: nothing left running
        raise
    yield root, document, started.stderr
    lab(root, "down")


def portal_rows(root: Path, query: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(root.parent / "portal-var" / "portal.sqlite3")) as db:
        return db.execute(query).fetchall()


def photon_vm_rows(info: dict[str, Any]) -> list[dict[str, Any]]:
    host, port = info["url"].split("//")[1].split("/")[0].rsplit(":", 1)
    context = ssl.create_default_context(cadata=Path(info["certificate"]).read_text())
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.check_hostname = False
    si = SmartConnect(host=host, port=int(port), user=info["user"], pwd=info["password"], sslContext=context)
    try:
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[
                vmodl.query.PropertyCollector.ObjectSpec(
                    obj=view,
                    skip=True,
                    selectSet=[
                        vmodl.query.PropertyCollector.TraversalSpec(
                            name="view", path="view", skip=False, type=vim.view.ContainerView
                        )
                    ],
                )
            ],
            propSet=[
                vmodl.query.PropertyCollector.PropertySpec(
                    type=vim.VirtualMachine, pathSet=["name", "config.guestId", "guest.ipAddress"]
                )
            ],
        )
        result = content.propertyCollector.RetrievePropertiesEx(
            [spec], vmodl.query.PropertyCollector.RetrieveOptions()
        )
        return [{p.name: p.val for p in obj.propSet} for obj in result.objects]
    finally:
        Disconnect(si)


def catalog(registry: dict[str, Any]) -> list[str]:
    url = registry["url"] + "/v2/_catalog?n=1000"
    auth = (registry["user"], registry["password"]) if registry["user"] else None
    if registry["auth"] == "token":
        challenge = requests.get(url, timeout=10)
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge.headers["WWW-Authenticate"]))
        token = requests.get(
            params["realm"],
            params={"service": params["service"], "scope": "registry:catalog:*"},
            auth=auth,
            timeout=10,
        ).json()["token"]
        response = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    else:
        response = requests.get(url, auth=auth, timeout=10)
    response.raise_for_status()
    return response.json()["repositories"]


async def os_release(host: dict[str, Any], host_key: str) -> str:
    async with asyncssh.connect(
        host["address"],
        port=host["port"],
        username=host["user"],
        client_keys=[host["private_key"]],
        known_hosts=([asyncssh.import_public_key(host_key)], [], []),
    ) as connection:
        return (await connection.run("cat /etc/os-release", check=True)).stdout


def test_up_gives_every_peer_working_as_documented(lab_document, monkeypatch: pytest.MonkeyPatch) -> None:
    root, document, _ = lab_document
    assert set(document) == {"vcenter", "docker", "registries", "hosts", "directory", "oidc"}
    assert common.port_open("127.0.0.1", document["directory"]["port"])

    rows = photon_vm_rows(document["vcenter"])
    assert len(rows) >= 100
    photon = [r for r in rows if r.get("config.guestId") == PHOTON]
    assert photon
    # The first Photon VMs point at the lab's own SSH hosts.
    addresses = {r.get("guest.ipAddress") for r in photon}
    assert {h["address"] for h in document["hosts"]} <= addresses

    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    for engine in document["docker"]:
        if engine["tls"]:
            tls = docker.tls.TLSConfig(
                client_cert=(engine["tls"]["cert"], engine["tls"]["key"]),
                ca_cert=engine["tls"]["ca"],
                verify=True,
            )
            assert docker.DockerClient(base_url=engine["url"], tls=tls, timeout=10).ping()
            with pytest.raises(docker.errors.DockerException):
                no_cert = docker.tls.TLSConfig(ca_cert=engine["tls"]["ca"], verify=True)
                docker.DockerClient(base_url=engine["url"], tls=no_cert, timeout=10).ping()
        else:
            assert docker.DockerClient(base_url=engine["url"], timeout=10).ping()

    seeded = set(seed.describe().repositories)
    kinds = {(r["kind"], r["auth"]) for r in document["registries"]}
    assert kinds == {
        ("distribution", "none"),
        ("distribution", "basic"),
        ("distribution", "token"),
        ("harbor", "basic"),
    }
    for registry in document["registries"]:
        if registry["kind"] == "harbor":
            listed = requests.get(
                registry["url"] + "/api/v2.0/repositories",
                params={"page_size": 100},
                auth=(registry["user"], registry["password"]),
                timeout=30,
            )
            assert listed.status_code == 200 and int(listed.headers["X-Total-Count"]) >= 50
        else:
            assert seeded <= set(catalog(registry)), registry["auth"]
            if registry["user"]:
                wrong = requests.get(registry["url"] + "/v2/", auth=(registry["user"], "wrong"), timeout=10)
                assert wrong.status_code == 401

    other_key = document["hosts"][1]["host_key"]
    for host in document["hosts"]:
        assert "ID=photon" in asyncio.run(os_release(host, host["host_key"])).splitlines()
        if host["host_key"] != other_key:
            with pytest.raises(asyncssh.HostKeyNotVerifiable):
                asyncio.run(os_release(host, other_key))

    status = lab(root, "status", "--json")
    assert status.returncode == 0 and json.loads(status.stdout) == document


def test_register_brings_the_whole_lab_into_the_portal_every_host_on(lab_document) -> None:
    root, document, said = lab_document
    # Every lab host runs dockerd, as a Photon host does, and the portal moved its API to
    # TLS with its own CA: every host is ON, none waits for a change by hand.
    assert all(h["full"] for h in document["hosts"])
    hosts = portal_rows(root, "SELECT name, status, docker_url, tls_fingerprint, last_error FROM hosts_host")
    assert len(hosts) == len(document["hosts"]) + len(document["docker"])
    assert {name: status for name, status, *_ in hosts} == {name: "on" for name, *_ in hosts}, hosts
    photon = {h["name"] for h in document["hosts"]}
    for name, _, url, fingerprint, _ in hosts:
        if name in photon:
            assert url.startswith("tcp://") and url.endswith(":2376") and fingerprint, name
    # vCenter's inventory is read, with a Photon template, and project Lab may clone from it.
    templates = portal_rows(root, "SELECT name FROM hosts_virtualmachine WHERE is_template")
    assert [name for (name,) in templates] == document["vcenter"]["templates"] == ["photon-5-template-1"]
    quota = portal_rows(
        root,
        "SELECT p.name FROM hosts_provisionquota q JOIN portal_project p ON p.id = q.project_id"
        " JOIN hosts_provisionquota_vcenters v ON v.provisionquota_id = q.id",
    )
    assert quota == [("Lab",)]
    # And the newcomer is told where to go next.
    assert "make run" in said and "Ten minutes with the lab" in said


def test_down_leaves_nothing_and_up_works_again(lab_document) -> None:
    root, document, _ = lab_document
    ports = [int(u.rsplit(":", 1)[1].split("/")[0]) for u in [document["vcenter"]["url"]]]
    ports += [int(e["url"].rsplit(":", 1)[1]) for e in document["docker"]]
    ports += [int(r["url"].rsplit(":", 1)[1]) for r in document["registries"]]
    assert lab(root, "down").returncode == 0
    assert not any(common.port_open("127.0.0.1", port) for port in ports)
    # No connection attempts to the hosts' addresses once they are gone: without
    # the lab's routes that traffic would leave the machine. Check the routes instead.
    routes = subprocess.run(["ip", "-o", "route"], capture_output=True, text=True, check=True).stdout
    assert not any(h["address"] in routes for h in document["hosts"])
    assert str(root) not in Path("/proc/mounts").read_text()
    assert not root.exists() or not any(root.iterdir())
    assert lab(root, "status").returncode == 1

    again = lab(root, "up", "--hosts", "1", "--vms", "10", "--json")
    assert again.returncode == 0, again.stderr
    assert len(json.loads(again.stdout)["hosts"]) == 1
    assert lab(root, "up").returncode == 1  # already up: says so, changes nothing
