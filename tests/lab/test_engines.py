"""The lab's Docker engines answer like real ones, TLS is really enforced, and down leaves nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import docker
import pytest
import requests

from tests.lab import common, engines, images, pki
from tests.lab.fixtures import unavailable

ENV_CA_VARS = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
NOTHING: dict[str, list[str]] = {"processes": [], "mounts": [], "cgroups": []}


@pytest.fixture
def no_env_ca(monkeypatch: pytest.MonkeyPatch) -> None:
    # These make requests ignore the CA given to the SDK; tests must not depend on them.
    for name in ENV_CA_VARS:
        monkeypatch.delenv(name, raising=False)


def _by_name(started: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(engine for engine in started if engine["name"] == name)


def _https_url(engine: dict[str, Any]) -> str:
    return engine["url"].replace("tcp://", "https://")


def _refused(**kwargs: Any) -> None:
    """Assert a TLS request to the engine fails in the handshake.

    Depending on timing the client sees the server's "bad certificate" alert or only
    the closed connection; both are an SSLError, never an HTTP response.
    """
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(timeout=10, **kwargs)


# -- engines answer -------------------------------------------------------------------------------


def test_every_engine_answers_ping_over_tcp(lab_engines: list[dict[str, Any]], no_env_ca: None) -> None:
    assert [e["name"] for e in lab_engines] == ["plain1", "tls1"]
    ids = set()
    for engine in lab_engines:
        with closing(engines.connect(engine)) as client:
            assert client.ping() is True
            assert client.version()["ApiVersion"] == "1.41"
            ids.add(client.info()["ID"])
    # Each engine has its own trust key, so the portal can tell them apart.
    assert len(ids) == len(lab_engines)


def test_lists_running_and_stopped_containers(lab_engines: list[dict[str, Any]], no_env_ca: None) -> None:
    for engine in lab_engines:
        with closing(engines.connect(engine)) as client:
            running = {c.name: c for c in client.containers.list()}
            assert sorted(running) == engine["containers"]["running"] == ["web", "worker"]
            everything = {c.name: c for c in client.containers.list(all=True)}
            for name, code in engine["containers"]["exited"].items():
                assert everything[name].status == "exited"
                assert everything[name].attrs["State"]["ExitCode"] == code
            assert everything["never-started"].status == "created"
            web = running["web"]
            assert web.labels["com.example.lab.odd"] == images.ODD_VALUE
            assert web.labels[engines.ENGINE_LABEL] == engine["name"]
            assert web.attrs["HostConfig"]["NetworkMode"] == "none"
            assert b"failing" in everything["job-failed"].logs()
            # Filtering happens in the engine, the way the portal will ask.
            failed = client.containers.list(all=True, filters={"exited": 3})
            assert [c.name for c in failed] == ["job-failed"]


def test_images_carry_their_labels_env_and_ports(lab_engines: list[dict[str, Any]], no_env_ca: None) -> None:
    engine = lab_engines[0]
    with closing(engines.connect(engine)) as client:
        busybox_ref = next(ref for ref in engine["images"] if ref.startswith(images.BUSYBOX_REPO))
        busybox = client.images.get(busybox_ref)
        tools = client.images.get(images.TOOLS_REF)
        assert busybox.id == engine["images"][busybox_ref]
        config = busybox.attrs["Config"]
        assert config["Labels"] == images.BASE_LABELS
        assert config["Env"] == images.BASE_ENV
        assert config["Cmd"] == ["sh"]
        assert set(config["ExposedPorts"]) == {"8080/tcp", "9000/udp"}
        assert tools.labels["com.example.lab.role"] == "tools"
        assert "LAB_GREETING=hello from the lab" in tools.attrs["Config"]["Env"]
        # Two repositories sharing their first layer, as in a real registry.
        assert tools.attrs["RootFS"]["Layers"][0] == busybox.attrs["RootFS"]["Layers"][0]
        assert len(tools.attrs["RootFS"]["Layers"]) == 2
        output = client.containers.run(
            images.TOOLS_REF, ["lab-hello"], network_mode="none", remove=True, stdout=True
        )
        assert output == b"hello from the lab\n"


# -- TLS is enforced --------------------------------------------------------------------------------


def test_tls_engine_answers_with_the_lab_client_certificate(
    lab_engines: list[dict[str, Any]], no_env_ca: None
) -> None:
    engine = _by_name(lab_engines, "tls1")
    tls = engine["tls"]
    assert {Path(tls[k]).exists() for k in ("ca", "cert", "key")} == {True}
    assert Path(tls["key"]).stat().st_mode & 0o777 == 0o600
    response = requests.get(
        _https_url(engine) + "/_ping", verify=tls["ca"], cert=(tls["cert"], tls["key"]), timeout=10
    )
    assert (response.status_code, response.text) == (200, "OK")


def test_tls_engine_refuses_a_client_without_certificate(
    lab_engines: list[dict[str, Any]], no_env_ca: None
) -> None:
    engine = _by_name(lab_engines, "tls1")
    _refused(url=_https_url(engine) + "/_ping", verify=engine["tls"]["ca"])
    sdk = docker.DockerClient(
        base_url=engine["url"], tls=docker.tls.TLSConfig(verify=engine["tls"]["ca"]), version="1.41"
    )
    with closing(sdk), pytest.raises(requests.exceptions.SSLError):
        sdk.ping()


def test_tls_engine_refuses_a_certificate_from_another_ca(
    lab_engines: list[dict[str, Any]], no_env_ca: None, tmp_path: Path
) -> None:
    engine = _by_name(lab_engines, "tls1")
    stranger = pki.CertificateAuthority.create(tmp_path / "other-ca", "Someone else's CA")
    cert = stranger.issue_client(tmp_path / "other-ca", "intruder", "photon-portal")
    _refused(
        url=_https_url(engine) + "/_ping", verify=engine["tls"]["ca"], cert=(str(cert.cert), str(cert.key))
    )


def test_tls_engine_refuses_plain_http(lab_engines: list[dict[str, Any]], no_env_ca: None) -> None:
    engine = _by_name(lab_engines, "tls1")
    response = requests.get(engine["url"].replace("tcp://", "http://") + "/_ping", timeout=10)
    # Go's TLS server answers plain HTTP with a canned 400 and never reaches the API.
    assert response.status_code == 400
    assert "HTTPS server" in response.text


def test_client_rejects_a_server_its_ca_did_not_sign(
    lab_engines: list[dict[str, Any]], no_env_ca: None, tmp_path: Path
) -> None:
    engine = _by_name(lab_engines, "tls1")
    stranger = pki.CertificateAuthority.create(tmp_path / "other-ca")
    tls = engine["tls"]
    _refused(
        url=_https_url(engine) + "/_ping", verify=str(stranger.cert_path), cert=(tls["cert"], tls["key"])
    )


def test_connect_keeps_its_ca_despite_ca_bundle_variables(
    lab_engines: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # This machine sets both to the system bundle, which knows nothing of the lab's CA.
    for name in ENV_CA_VARS:
        monkeypatch.setenv(name, "/etc/ssl/certs/ca-certificates.crt")
    with closing(engines.connect(_by_name(lab_engines, "tls1"))) as client:
        assert client.ping() is True


def test_plain_engine_answers_plain_http(lab_engines: list[dict[str, Any]]) -> None:
    engine = _by_name(lab_engines, "plain1")
    assert engine["tls"] is None
    response = requests.get(engine["url"].replace("tcp://", "http://") + "/_ping", timeout=10)
    assert (response.status_code, response.text) == (200, "OK")


# -- lifecycle ---------------------------------------------------------------------------------------


def _traces(workdir: Path, exec_roots: list[str]) -> dict[str, list[str]]:
    """Processes, mounts and cgroups the engines under ``workdir`` could have left."""
    markers = [str(workdir), *exec_roots]
    processes = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if any(m in cmdline for m in markers) and "pytest" not in cmdline:
                processes.append(cmdline)
    mounts = [
        line for line in Path("/proc/self/mounts").read_text().splitlines() if any(m in line for m in markers)
    ]
    cgroups = [
        str(p) for root in exec_roots for p in Path("/sys/fs/cgroup").glob(f"*/plab-{Path(root).name}")
    ]
    return {"processes": processes, "mounts": mounts, "cgroups": cgroups}


def _up_in_another_process(workdir: Path) -> dict[str, Any]:
    code = (
        "import sys, json; from pathlib import Path; from tests.lab import engines; "
        "print(json.dumps(engines.up(Path(sys.argv[1]), plain=1, tls=0)))"
    )
    starter = subprocess.run(
        [sys.executable, "-c", code, str(workdir)],
        cwd=common.REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if starter.returncode and "LabUnavailable" in starter.stderr:
        unavailable(common.LabUnavailable(starter.stderr.strip().splitlines()[-1]))
    assert starter.returncode == 0, starter.stderr
    (engine,) = json.loads(starter.stdout)
    return engine


def _exec_root(engine: dict[str, Any]) -> str:
    return engine["socket"].rsplit("/", 1)[0]


@pytest.mark.timeout(180)
def test_engines_outlive_their_starter_and_down_leaves_nothing(tmp_path: Path, no_env_ca: None) -> None:
    workdir = tmp_path / "engines"
    try:
        # up in a process that has exited by now, down from this one: the lab's CLI works that way.
        engine = _up_in_another_process(workdir)
        with closing(engines.connect(engine)) as client:
            assert client.ping() is True

        engines.down(workdir)
        assert _traces(workdir, [_exec_root(engine)]) == NOTHING
        assert not workdir.exists()
        assert not Path(_exec_root(engine)).exists()
        engines.down(workdir)  # idempotent

        # The same workdir serves again.
        (again,) = engines.up(workdir, plain=1, tls=0)
        with closing(engines.connect(again)) as client:
            assert {c.name for c in client.containers.list()} == {"web", "worker"}
        engines.down(workdir)
        assert _traces(workdir, [_exec_root(again)]) == NOTHING
    finally:
        engines.down(workdir)
