"""Container images for the lab, made here from Debian's static busybox (no Docker Hub).

``build()`` writes one ``docker save``-format archive (``manifest.json``, image
configs, uncompressed layer tars) holding two images:

- ``lab/busybox:<busybox version>``: one layer, ``/bin/busybox`` and a link per applet;
- ``lab/tools:latest``: that same layer plus a small second one, so a registry
  sees two repositories sharing a blob, with different digests.

Building is deterministic (fixed timestamps and owners), so the image ids are
the same on every machine with the same busybox, and the archive is cached
under ``common.CACHE``. ``load(client)`` hands it to an engine through the
docker SDK exactly as ``docker load`` would.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import re
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tests.lab import common

if TYPE_CHECKING:
    import docker

BUSYBOX = Path("/bin/busybox")
#: Bump when the archive's content changes, so cached archives are rebuilt.
_RECIPE = 1
#: 2024-01-01T00:00:00Z: every file and config carries it, for reproducible ids.
_EPOCH = 1704067200
_CREATED = "2024-01-01T00:00:00Z"

BUSYBOX_REPO = "lab/busybox"
TOOLS_REF = "lab/tools:latest"
#: Characters a browser must escape, so the portal's templates get tested on them.
ODD_VALUE = "<b>\"odd\" & 'quoted'</b> \u00fc/\u2603"
BASE_ENV = [
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LAB_IMAGE=busybox",
]
BASE_LABELS = {
    "org.opencontainers.image.title": "lab busybox",
    "org.opencontainers.image.vendor": "Photon Portal lab",
    "com.example.lab.odd": ODD_VALUE,
}
BASE_PORTS = {"8080/tcp": {}, "9000/udp": {}}
TOOLS_ENV = [*BASE_ENV[:1], "LAB_IMAGE=tools", "LAB_GREETING=hello from the lab"]
TOOLS_LABELS = {**BASE_LABELS, "org.opencontainers.image.title": "lab tools", "com.example.lab.role": "tools"}


@dataclass(frozen=True)
class Archive:
    """A built ``docker save`` archive and what it holds (image id by reference)."""

    path: Path
    images: dict[str, str]

    @property
    def busybox_ref(self) -> str:
        return next(ref for ref in self.images if ref.startswith(BUSYBOX_REPO + ":"))


def busybox_version() -> str:
    banner = subprocess.run([str(BUSYBOX)], capture_output=True, text=True, check=False).stdout
    match = re.search(r"BusyBox v(\d+\.\d+)(?:\.\d+)?", banner)
    if not match:
        raise common.LabUnavailable(f"cannot read the busybox version from {BUSYBOX}")
    return match.group(1)


def _architecture() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _tar_entry(
    name: str, *, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, size: int = 0
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = _EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    tar.addfile(_tar_entry(name, mode=mode, size=len(data)), io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    tar.addfile(_tar_entry(name, kind=tarfile.DIRTYPE, mode=mode))


def _base_layer() -> bytes:
    applets = subprocess.run(
        [str(BUSYBOX), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for directory in (
            "bin",
            "dev",
            "etc",
            "home",
            "proc",
            "sys",
            "usr",
            "usr/local",
            "usr/local/bin",
            "var",
        ):
            _add_dir(tar, directory)
        _add_dir(tar, "root", 0o700)
        _add_dir(tar, "tmp", 0o1777)
        _add_file(tar, "bin/busybox", BUSYBOX.read_bytes(), 0o755)
        for applet in sorted(set(applets) - {"busybox"}):
            link = _tar_entry(f"bin/{applet}", kind=tarfile.SYMTYPE, mode=0o777)
            link.linkname = "busybox"
            tar.addfile(link)
        _add_file(
            tar,
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
        )
        _add_file(tar, "etc/group", b"root:x:0:\nnobody:x:65534:\n")
    return out.getvalue()


def _tools_layer() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        _add_file(tar, "usr/local/bin/lab-hello", b'#!/bin/sh\necho "$LAB_GREETING"\n', 0o755)
        _add_file(tar, "etc/lab-tools.txt", b"made by tests/lab/images.py\n")
    return out.getvalue()


def _config(diff_ids: list[str], env: list[str], labels: dict[str, str], comment: str) -> bytes:
    config = {
        "architecture": _architecture(),
        "os": "linux",
        "created": _CREATED,
        "author": "Photon Portal lab",
        "config": {
            "Env": env,
            "Cmd": ["sh"],
            "WorkingDir": "/",
            "Labels": labels,
            "ExposedPorts": BASE_PORTS,
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": _CREATED, "created_by": f"tests/lab/images.py: {c}"} for c in comment.split("|")
        ],
    }
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _write_archive(path: Path, tags: dict[str, str]) -> dict[str, str]:
    base, tools = _base_layer(), _tools_layer()
    base_id, tools_id = _sha256(base), _sha256(tools)
    configs = {
        tags["busybox"]: (_config([base_id], BASE_ENV, BASE_LABELS, "busybox rootfs"), [base_id]),
        tags["tools"]: (
            _config([base_id, tools_id], TOOLS_ENV, TOOLS_LABELS, "busybox rootfs|lab tools"),
            [base_id, tools_id],
        ),
    }
    manifest = [
        {
            "Config": f"{_sha256(cfg)[7:]}.json",
            "RepoTags": [ref],
            "Layers": [f"{layer[7:]}/layer.tar" for layer in layers],
        }
        for ref, (cfg, layers) in configs.items()
    ]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tarfile.open(tmp, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for digest, data in ((base_id, base), (tools_id, tools)):
            _add_dir(tar, digest[7:])
            _add_file(tar, f"{digest[7:]}/layer.tar", data)
        for cfg, _ in configs.values():
            _add_file(tar, f"{_sha256(cfg)[7:]}.json", cfg)
        _add_file(tar, "manifest.json", json.dumps(manifest).encode())
    # Other lab parts may build at the same moment: publish the whole file or nothing.
    tmp.replace(path)
    return {ref: _sha256(cfg) for ref, (cfg, _) in configs.items()}


def build() -> Archive:
    """Return the cached image archive, building it first if busybox or the recipe changed."""
    if not BUSYBOX.exists():
        raise common.LabUnavailable(f"{BUSYBOX} not found: apt-get install busybox-static")
    tags = {"busybox": f"{BUSYBOX_REPO}:{busybox_version()}", "tools": TOOLS_REF}
    key = hashlib.sha256(BUSYBOX.read_bytes() + f"{_RECIPE}{_architecture()}".encode()).hexdigest()[:16]
    directory = common.CACHE / "images"
    path, index = directory / f"lab-images-{key}.tar", directory / f"lab-images-{key}.json"
    if path.exists() and index.exists():
        return Archive(path, json.loads(index.read_text()))
    directory.mkdir(parents=True, exist_ok=True)
    images = _write_archive(path, tags)
    tmp = index.with_name(f".{index.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(images))
    tmp.replace(index)
    return Archive(path, images)


def load(client: docker.DockerClient, archive: Archive | None = None) -> Archive:
    """Load the lab's images into the engine behind ``client`` (like ``docker load``)."""
    archive = archive or build()
    with archive.path.open("rb") as f:
        # The SDK streams the engine's progress messages: an error arrives as one of them.
        for message in client.api.load_image(f, quiet=True):
            if "error" in message:
                raise RuntimeError(f"loading {archive.path} failed: {message['error']}")
    return archive
