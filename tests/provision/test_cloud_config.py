"""The cloud-config the portal generates is what Debian's cloud-init accepts, and says what it must."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from hosts import ca as portal_ca
from hosts import ssh_keys
from hosts.changes.files import docker as docker_settings
from hosts.provision import cloud_config

pytestmark = pytest.mark.django_db


def seed() -> cloud_config.HostSeed:
    issued = portal_ca.issue_server(["photon-1"])
    return cloud_config.HostSeed(
        instance_id="portal-test-1",
        hostname="photon-1",
        ssh_public_key=ssh_keys.new_ssh_key("photon-1").public,
        client_ca_pem=portal_ca.new_client_ca("photon-1").cert,
        server_cert_pem=issued.cert,
        server_key_pem=issued.key,
        enroll_url="http://portal.test/hosts/provision/enroll/TOKEN/",
    )


def schema(path: Path) -> subprocess.CompletedProcess[str]:
    if not shutil.which("cloud-init"):
        pytest.fail("Debian's cloud-init is not installed (apt-get install cloud-init)")
    # cloud-init is the system Python's package: never the virtualenv's interpreter.
    return subprocess.run(
        ["/usr/bin/python3", "/usr/bin/cloud-init", "schema", "--config-file", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
    )


def test_cloud_init_accepts_the_generated_cloud_config(tmp_path: Path) -> None:
    path = tmp_path / "user-data"
    path.write_text(cloud_config.user_data(seed(), {"daemon_json": {"log-driver": "local"}}))
    result = schema(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid cloud-config" in result.stdout


def test_the_schema_check_does_catch_a_bad_document(tmp_path: Path) -> None:
    # Proves the check above can fail: a user list that is not a list is refused.
    path = tmp_path / "user-data"
    path.write_text("#cloud-config\nusers: 42\nphone_home: {tries: many}\n")
    assert schema(path).returncode != 0


def test_the_cloud_config_carries_key_certificate_drop_in_and_phone_home() -> None:
    s = seed()
    text = cloud_config.user_data(s)
    assert text.startswith("#cloud-config\n")
    config = yaml.safe_load(text)
    assert config["hostname"] == "photon-1"
    root = config["users"][0]
    assert root["name"] == "root" and root["lock_passwd"] is False
    assert root["ssh_authorized_keys"] == [s.ssh_public_key]
    files = {f["path"]: f for f in config["write_files"]}
    assert files[docker_settings.KEY]["content"] == s.server_key_pem
    assert files[docker_settings.KEY]["permissions"] == "0600"
    assert files[docker_settings.CERT]["content"] == s.server_cert_pem
    assert files[docker_settings.CA]["content"] == s.client_ca_pem
    drop_in = files[docker_settings.DROP_IN]["content"]
    assert "tcp://0.0.0.0:2376" in drop_in and "--tlsverify" in drop_in and "ExecStart=\n" in drop_in
    assert config["phone_home"]["url"] == s.enroll_url
    assert {"pub_key_ed25519", "instance_id"} <= set(config["phone_home"]["post"])


def test_guestinfo_is_base64_metadata_with_an_instance_id_and_the_user_data() -> None:
    s = seed()
    keys = cloud_config.guestinfo(s)
    assert set(keys) == set(cloud_config.GUESTINFO_KEYS)
    assert keys["guestinfo.metadata.encoding"] == keys["guestinfo.userdata.encoding"] == "base64"
    meta = json.loads(base64.b64decode(keys["guestinfo.metadata"]))
    assert meta["instance-id"] == s.instance_id and meta["local-hostname"] == "photon-1"
    assert base64.b64decode(keys["guestinfo.userdata"]).decode() == cloud_config.user_data(s)
