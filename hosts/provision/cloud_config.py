"""The cloud-init data a new Photon host boots with, and how it travels in guestinfo.

A clone carries two documents in its VMware guestinfo (cloud-init's VMware
datasource reads them): the metadata (instance-id, host name) and the user data, a
``#cloud-config`` that makes the host what the portal expects before it ever
phones home: root accepts the SSH key made for this host alone, dockerd listens
on 2376 with a server certificate from the portal's CA and ``--tlsverify``
against this host's own client CA (so no other host's portal certificate opens
it), and the last step posts the host's SSH keys to its one-time enrollment URL.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pycdlib
import yaml

from hosts.changes.files import daemon_json, firewall
from hosts.changes.files import docker as docker_settings

#: dockerd's base command line for the drop-in. Photon's unit starts it with
#: ``-H fd://``, which needs docker.socket; a unix listener works with or
#: without socket activation (and in the lab, which has none).
DOCKER_UNIT = "[Service]\nExecStart=/usr/bin/dockerd -H unix:///var/run/docker.sock\n"

#: Photon's firewall drops everything but ssh. Open 2376 in its persistent rules the
#: way hosts.changes.files.firewall does (an ACCEPT after the tcp/22 line), editing rather
#: than replacing the file, so a template's own rules are kept.
OPEN_DOCKER_PORT = (
    f"grep -q -- '--dport {docker_settings.TLS_PORT} -j ACCEPT' {firewall.PATH} || "
    f"sed -i '/--dport 22 -j ACCEPT/a -A INPUT -p tcp -m tcp --dport {docker_settings.TLS_PORT} -j ACCEPT' "
    f"{firewall.PATH}"
)

GUESTINFO_KEYS = (
    "guestinfo.metadata",
    "guestinfo.metadata.encoding",
    "guestinfo.userdata",
    "guestinfo.userdata.encoding",
)


@dataclass(frozen=True)
class HostSeed:
    """Everything one new host's cloud-init needs to know."""

    instance_id: str
    hostname: str
    #: The public half of the key made for this host alone (root's only authorized key).
    ssh_public_key: str
    #: This host's own client CA: dockerd's --tlscacert, trusting no other host's client certificate.
    client_ca_pem: str
    server_cert_pem: str
    server_key_pem: str = field(repr=False)
    #: Carries the one-time enrollment token.
    enroll_url: str = field(repr=False)


def metadata(seed: HostSeed) -> str:
    # instance-id is required: without it the VMware datasource fails and
    # cloud-init silently carries on with DataSourceNone.
    return json.dumps({"instance-id": seed.instance_id, "local-hostname": seed.hostname})


def user_data(seed: HostSeed, profile_settings: Mapping[str, Any] | None = None) -> str:
    """The ``#cloud-config`` document for ``seed`` (profile settings: see ``_profile_files``)."""
    drop_in = docker_settings.render("", {"enabled": True}, unit_text=DOCKER_UNIT)
    files: list[dict[str, Any]] = [
        {"path": docker_settings.CA, "content": seed.client_ca_pem, "permissions": "0644"},
        {"path": docker_settings.CERT, "content": seed.server_cert_pem, "permissions": "0644"},
        {"path": docker_settings.KEY, "content": seed.server_key_pem, "permissions": "0600"},
        {"path": docker_settings.DROP_IN, "content": drop_in, "permissions": "0644"},
    ]
    files += _profile_files(profile_settings or {})
    config: dict[str, Any] = {
        "hostname": seed.hostname,
        "fqdn": seed.hostname,
        "preserve_hostname": False,
        "users": [
            {
                "name": "root",
                # Locked by default, and with UsePAM no sshd then refuses even key logins.
                "lock_passwd": False,
                "ssh_authorized_keys": [seed.ssh_public_key.strip()],
            }
        ],
        "disable_root": False,
        "ssh_pwauth": False,
        "write_files": files,
        "runcmd": [
            OPEN_DOCKER_PORT,
            ["systemctl", "restart", "iptables"],
            ["systemctl", "daemon-reload"],
            ["systemctl", "enable", "docker"],
            ["systemctl", "restart", "docker"],
        ],
        "phone_home": {
            "url": seed.enroll_url,
            "post": ["pub_key_rsa", "pub_key_ecdsa", "pub_key_ed25519", "instance_id", "hostname", "fqdn"],
            "tries": 10,
        },
    }
    return "#cloud-config\n" + yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


def _profile_files(profile: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A configuration profile's daemon.json, if it sets one, written at first boot.

    sshd and the firewall are left to the configuration flow (hosts.changes) after
    enrollment: it reads the host's own files, which a first boot cannot.
    """
    wanted = profile.get("daemon_json")
    if not wanted:
        return []
    text = daemon_json.render("", wanted)
    if not text:
        return []
    return [{"path": daemon_json.PATH, "content": text, "permissions": "0644"}]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def guestinfo(seed: HostSeed, profile_settings: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The extraConfig keys a clone sets, base64 as the VMware datasource expects."""
    return {
        "guestinfo.metadata": _b64(metadata(seed)),
        "guestinfo.metadata.encoding": "base64",
        "guestinfo.userdata": _b64(user_data(seed, profile_settings)),
        "guestinfo.userdata.encoding": "base64",
    }


# --- NoCloud seed ISO ---------------------------------------------------------------------------

#: cloud-init's NoCloud datasource looks for a filesystem with this label.
SEED_LABEL = "cidata"


def seed_files(seed: HostSeed, profile_settings: Mapping[str, Any] | None = None) -> dict[str, bytes]:
    return {
        "meta-data": metadata(seed).encode(),
        "user-data": user_data(seed, profile_settings).encode(),
    }


def seed_iso(files: Mapping[str, bytes]) -> bytes:
    """A NoCloud seed ISO (label ``cidata``, Rock Ridge and Joliet names) for hosts
    that cannot be given guestinfo or cannot reach the portal at install time."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=SEED_LABEL)
    try:
        for name, data in files.items():
            # Plain ISO 9660 names allow no '-': readers use the Rock Ridge or Joliet name.
            iso_name = "/" + name.replace("-", "").upper()[:30] + ".;1"
            iso.add_fp(io.BytesIO(data), len(data), iso_name, rr_name=name, joliet_path="/" + name)
        out = io.BytesIO()
        iso.write_fp(out)
        return out.getvalue()
    finally:
        iso.close()


# --- Photon installer kickstart ----------------------------------------------------------------

#: Where cloud-init's NoCloud datasource finds a seed on the installed disk.
NOCLOUD_SEED_DIR = "/var/lib/cloud/seed/nocloud"


def kickstart(
    seed: HostSeed, profile_settings: Mapping[str, Any] | None = None, *, disk: str = "/dev/sda"
) -> dict[str, Any]:
    """The Photon installer's JSON kickstart (``ks=http://...``) for ``seed``.

    The install itself only lays down Photon with Docker and cloud-init; the
    postinstall step leaves the same cloud-config as a NoCloud seed on the disk,
    so the first boot configures the host and phones home exactly as a clone does.
    Root's password is locked: the portal logs in with its key.
    """
    files = seed_files(seed, profile_settings)
    postinstall = ["#!/bin/sh", "set -e", f"mkdir -p {NOCLOUD_SEED_DIR}"]
    for name, data in files.items():
        postinstall.append(f"echo {base64.b64encode(data).decode()} | base64 -d > {NOCLOUD_SEED_DIR}/{name}")
    return {
        "hostname": seed.hostname,
        "password": {"crypted": True, "text": "*"},
        "disk": disk,
        "packagelist_file": "packages_minimal.json",
        "additional_packages": ["docker", "cloud-init", "iptables"],
        "public_key": seed.ssh_public_key.strip(),
        "postinstall": postinstall,
        "network": {"type": "dhcp"},
    }
