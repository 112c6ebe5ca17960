"""The images the lab's registries hold, and how they get there.

Everything here is deterministic (fixed dates, tar and gzip without timestamps),
so the digests are known before anything is pushed: tests assert against
:func:`describe` without asking a registry.  :func:`push` sends a plan through
the Registry HTTP API v2 only (no docker daemon), the way a real client does:
blob uploads, cross-repository mounts, manifests by tag or digest.

What the seed covers, and why:

- a few hundred repositories, so the catalog needs several ``?n=`` pages;
- names with slashes at two and three levels (``library/photon``, ``team-a/app/api``);
- ``library/many-tags`` with more than 1,000 tags whose configs carry different
  ``created`` dates (``tags/list`` is unpaged and unsorted in distribution 2.8, so
  "newest first" is the client's job, and names sort differently from dates);
- Docker schema2 and OCI manifests, an OCI image index and a Docker manifest list
  (linux/amd64 + linux/arm64), configs with Labels/Env/Cmd/Entrypoint/ExposedPorts
  and OCI ``org.opencontainers.image.*`` annotations;
- two tags on one digest (``library/photon:5.0`` and ``:latest``);
- ``scratch/delete-me`` with two tags on distinct digests, for delete tests.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache

import requests

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
#: What a client must send to get any seeded manifest back unconverted.
ACCEPT_ALL = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST))

DEFAULT_REPOS = 300
DEFAULT_MANY_TAGS = 1050
MANY_TAGS_REPO = "library/many-tags"
DELETE_REPO = "scratch/delete-me"
#: Repositories that are always seeded; the rest of ``repos`` are fillers.
SPECIAL_REPOS = (
    "library/photon",
    "library/nginx",
    "team-a/app/api",
    "team-b/tools",
    MANY_TAGS_REPO,
    DELETE_REPO,
)
_EPOCH = datetime(2023, 6, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Blob:
    data: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return _digest(self.data)

    def descriptor(self, media_type: str | None = None) -> dict[str, object]:
        return {"mediaType": media_type or self.media_type, "size": len(self.data), "digest": self.digest}


@dataclass(frozen=True)
class Manifest:
    media_type: str
    data: bytes
    #: Blobs that must be in the repository before the manifest is accepted.
    blobs: tuple[Blob, ...] = ()
    #: Manifests an index refers to; pushed (by digest) before it.
    children: tuple[Manifest, ...] = ()
    created: str | None = None
    platform: str | None = None

    @property
    def digest(self) -> str:
        return _digest(self.data)


@dataclass(frozen=True)
class TagInfo:
    digest: str
    media_type: str
    #: The config's ``created`` (ISO 8601); None for an index.
    created: str | None
    #: ``os/arch`` -> child manifest digest, for an index.
    platforms: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seed:
    """What :func:`push` put into a registry, for tests to assert against."""

    repositories: tuple[str, ...]
    tags: dict[str, dict[str, TagInfo]]
    many_tags_repo: str = MANY_TAGS_REPO
    delete_repo: str = DELETE_REPO
    #: An OCI image index (amd64 + arm64); also the shared-digest pair below.
    multi_arch: tuple[str, str] = ("library/photon", "5.0")
    #: A Docker manifest list (amd64 + arm64).
    manifest_list: tuple[str, str] = ("library/photon", "3.0")
    shared_digest: tuple[str, tuple[str, ...]] = ("library/photon", ("5.0", "latest"))
    oci_manifest: tuple[str, str] = ("library/nginx", "1.25")
    docker_manifest: tuple[str, str] = ("library/photon", "4.0")

    def digest(self, repo: str, tag: str) -> str:
        return self.tags[repo][tag].digest

    def as_json(self) -> dict[str, object]:
        return {
            "repositories": list(self.repositories),
            "many_tags_repo": self.many_tags_repo,
            "many_tags_count": len(self.tags[self.many_tags_repo]),
            "multi_arch": list(self.multi_arch),
            "manifest_list": list(self.manifest_list),
            "shared_digest": [self.shared_digest[0], list(self.shared_digest[1])],
            "oci_manifest": list(self.oci_manifest),
            "docker_manifest": list(self.docker_manifest),
            "delete_repo": self.delete_repo,
        }


@dataclass(frozen=True)
class Plan:
    #: repository -> tag -> manifest, in push order.
    repos: dict[str, dict[str, Manifest]]
    #: Layers pushed once to ``source`` and mounted everywhere else.
    layers: tuple[Blob, ...]
    source: str


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _canonical(obj: object) -> bytes:
    return json.dumps(obj, indent=3, sort_keys=False).encode()


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- layers -------------------------------------------------------------------------------------


def _layer(files: dict[str, str]) -> tuple[Blob, str]:
    """A gzip'd tar with ``files``; returns the blob and its diff_id (digest of the plain tar)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    plain = raw.getvalue()
    return Blob(gzip.compress(plain, mtime=0), DOCKER_LAYER), _digest(plain)


def _os_release(arch: str) -> dict[str, str]:
    return {
        "etc/os-release": (
            'NAME="VMware Photon OS"\nVERSION="5.0"\nID=photon\nVERSION_ID=5.0\n'
            f'PRETTY_NAME="VMware Photon OS/Linux"\nHOME_URL="https://vmware.github.io/photon/"\n# {arch}\n'
        ),
        "etc/photon-release": "VMware Photon OS 5.0\nPHOTON_BUILD_NUMBER=dde71ec57\n",
    }


@cache
def _layers() -> dict[str, tuple[Blob, str]]:
    layers = {
        "base-amd64": _layer(_os_release("x86_64")),
        "base-arm64": _layer(_os_release("aarch64")),
        "nginx": _layer({"etc/nginx/nginx.conf": "events {}\nhttp { server { listen 80; } }\n"}),
        "api": _layer({"srv/api/app.py": "print('team-a api')\n"}),
        "tools": _layer({"usr/local/bin/lab-tool": "#!/bin/sh\necho tools\n"}),
        "build": _layer({"srv/build/BUILD": "many tags\n"}),
    }
    for variant in range(4):
        layers[f"filler-{variant}"] = _layer({f"srv/filler/{variant}": f"filler variant {variant}\n"})
    return layers


# -- images -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    layers: tuple[str, ...]
    created: datetime
    arch: str = "amd64"
    oci: bool = False
    env: tuple[str, ...] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    cmd: tuple[str, ...] = ("/bin/bash",)
    entrypoint: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


def _config(image: Image) -> Blob:
    layers = _layers()
    created = _iso(image.created)
    container: dict[str, object] = {"Env": list(image.env), "Cmd": list(image.cmd), "WorkingDir": "/"}
    if image.entrypoint:
        container["Entrypoint"] = list(image.entrypoint)
    if image.ports:
        container["ExposedPorts"] = {port: {} for port in image.ports}
    if image.labels:
        container["Labels"] = dict(image.labels)
    config = {
        "architecture": image.arch,
        "os": "linux",
        "created": created,
        "author": "Photon Portal lab",
        "config": container,
        "rootfs": {"type": "layers", "diff_ids": [layers[name][1] for name in image.layers]},
        "history": [{"created": created, "created_by": f"ADD {name} /"} for name in image.layers],
    }
    return Blob(_canonical(config), OCI_CONFIG if image.oci else DOCKER_CONFIG)


def _manifest(image: Image) -> Manifest:
    config = _config(image)
    layer_blobs = [_layers()[name][0] for name in image.layers]
    layer_type = OCI_LAYER if image.oci else DOCKER_LAYER
    media_type = OCI_MANIFEST if image.oci else DOCKER_MANIFEST
    body: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.descriptor(),
        "layers": [blob.descriptor(layer_type) for blob in layer_blobs],
    }
    if image.oci and image.annotations:
        body["annotations"] = dict(image.annotations)
    return Manifest(
        media_type,
        _canonical(body),
        blobs=(config, *layer_blobs),
        created=_iso(image.created),
        platform=f"linux/{image.arch}",
    )


def _index(children: Iterable[Manifest], *, oci: bool) -> Manifest:
    kids = tuple(children)
    media_type = OCI_INDEX if oci else DOCKER_LIST
    body = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [
            {
                "mediaType": kid.media_type,
                "size": len(kid.data),
                "digest": kid.digest,
                "platform": {"architecture": (kid.platform or "").split("/")[1], "os": "linux"},
            }
            for kid in kids
        ],
    }
    return Manifest(media_type, _canonical(body), children=kids)


def _oci_annotations(title: str, version: str, created: datetime) -> dict[str, str]:
    return {
        "org.opencontainers.image.title": title,
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.created": _iso(created),
        "org.opencontainers.image.vendor": "Photon Portal lab",
        "org.opencontainers.image.source": f"https://example.invalid/{title}",
        "org.opencontainers.image.licenses": "Apache-2.0",
    }


def _photon() -> dict[str, Manifest]:
    def per_arch(created: datetime, *, oci: bool) -> list[Manifest]:
        labels = {"org.opencontainers.image.vendor": "VMware", "build-date": _iso(created)}
        return [
            _manifest(Image((f"base-{arch}",), created, arch=arch, oci=oci, labels=labels))
            for arch in ("amd64", "arm64")
        ]

    five = _index(per_arch(_EPOCH + timedelta(days=300), oci=True), oci=True)
    four = _manifest(Image(("base-amd64",), _EPOCH + timedelta(days=120), labels={"release": "4.0"}))
    three = _index(per_arch(_EPOCH + timedelta(days=10), oci=False), oci=False)
    return {"5.0": five, "latest": five, "4.0": four, "3.0": three}


def _nginx() -> dict[str, Manifest]:
    def image(version: str, days: int, *, oci: bool) -> Manifest:
        created = _EPOCH + timedelta(days=days)
        return _manifest(
            Image(
                ("base-amd64", "nginx"),
                created,
                oci=oci,
                env=(*Image.env, f"NGINX_VERSION={version}"),
                cmd=("nginx", "-g", "daemon off;"),
                entrypoint=("/docker-entrypoint.sh",),
                ports=("80/tcp", "443/tcp"),
                labels={"maintainer": "lab@example.invalid", "org.opencontainers.image.version": version},
                annotations=_oci_annotations("nginx", version, created),
            )
        )

    new = image("1.25", 200, oci=True)
    return {"1.25": new, "latest": new, "1.24": image("1.24", 90, oci=False)}


def _api() -> dict[str, Manifest]:
    tags = {}
    for minor in range(3):
        created = _EPOCH + timedelta(days=30 * (minor + 1), hours=minor)
        version = f"v1.{minor}.0"
        tags[version] = _manifest(
            Image(
                ("base-amd64", "api"),
                created,
                oci=True,
                cmd=("python3", "/srv/api/app.py"),
                ports=("8080/tcp",),
                labels={"team": "team-a", "tier": "backend"},
                annotations=_oci_annotations("team-a/app/api", version, created),
            )
        )
    return tags


def _tools() -> dict[str, Manifest]:
    return {
        f"2024.{n}": _manifest(
            Image(("base-amd64", "tools"), _EPOCH + timedelta(days=250 + n), entrypoint=("lab-tool",))
        )
        for n in (1, 2)
    }


def _many_tags(count: int) -> dict[str, Manifest]:
    # build-<n> without zero padding: names sort differently from dates on purpose.
    return {
        f"build-{n}": _manifest(
            Image(("base-amd64", "build"), _EPOCH + timedelta(hours=7 * n), labels={"build": str(n)})
        )
        for n in range(1, count + 1)
    }


def _delete_me() -> dict[str, Manifest]:
    return {
        tag: _manifest(Image(("base-amd64",), _EPOCH + timedelta(days=days), labels={"tag": tag}))
        for tag, days in (("a", 1), ("b", 2))
    }


def filler_names(count: int) -> list[str]:
    names = []
    for k in range(count):
        if k % 5 == 4:
            names.append(f"group-{k % 7}/sub-{k % 3}/svc-{k:03d}")
        else:
            names.append(f"project-{k % 20:02d}/service-{k:03d}")
    return names


def _filler(k: int) -> dict[str, Manifest]:
    variant = k % 4
    created = _EPOCH + timedelta(days=k % 365, minutes=k)
    manifest = _manifest(
        Image(
            ("base-amd64", f"filler-{variant}"),
            created,
            oci=k % 2 == 1,
            labels={"filler": str(k)},
            annotations=_oci_annotations(f"svc-{k:03d}", "1.0", created),
        )
    )
    tags = {"1.0": manifest}
    if k % 3 == 0:
        tags["latest"] = manifest
    return tags


@cache
def plan(repos: int = DEFAULT_REPOS, many_tags: int = DEFAULT_MANY_TAGS) -> Plan:
    specials: dict[str, dict[str, Manifest]] = {
        "library/photon": _photon(),
        "library/nginx": _nginx(),
        "team-a/app/api": _api(),
        "team-b/tools": _tools(),
        MANY_TAGS_REPO: _many_tags(many_tags),
        DELETE_REPO: _delete_me(),
    }
    fillers = {name: _filler(k) for k, name in enumerate(filler_names(max(0, repos - len(specials))))}
    layers = tuple(blob for blob, _ in _layers().values())
    return Plan({**specials, **fillers}, layers, source="library/photon")


@cache
def describe(repos: int = DEFAULT_REPOS, many_tags: int = DEFAULT_MANY_TAGS) -> Seed:
    seeded = plan(repos, many_tags)
    tags = {
        repo: {
            tag: TagInfo(
                m.digest,
                m.media_type,
                m.created,
                {kid.platform or "": kid.digest for kid in m.children},
            )
            for tag, m in by_tag.items()
        }
        for repo, by_tag in seeded.repos.items()
    }
    return Seed(tuple(sorted(seeded.repos)), tags)


# -- pushing ------------------------------------------------------------------------------------


class Pusher:
    """Pushes over the Registry HTTP API v2 with one keep-alive session per thread."""

    def __init__(self, base_url: str, auth: requests.auth.AuthBase | tuple[str, str] | None = None):
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self._local = threading.local()

    @property
    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.auth = self.auth  # type: ignore[assignment]
            session.trust_env = False
        return session

    def _url(self, path: str) -> str:
        return path if path.startswith("http") else self.base_url + path

    def upload(self, repo: str, blob: Blob) -> None:
        start = self.session.post(self._url(f"/v2/{repo}/blobs/uploads/"), timeout=30)
        _check(start, 202)
        location = start.headers["Location"]
        # The upload URL already carries a query string (_state=...).
        location += ("&" if "?" in location else "?") + f"digest={blob.digest}"
        done = self.session.put(
            self._url(location),
            data=blob.data,
            headers={"Content-Type": "application/octet-stream"},
            timeout=30,
        )
        _check(done, 201)

    def mount(self, repo: str, blob: Blob, source: str) -> None:
        response = self.session.post(
            self._url(f"/v2/{repo}/blobs/uploads/"),
            params={"mount": blob.digest, "from": source},
            timeout=30,
        )
        if response.status_code == 202:  # not mountable: the registry opened an upload instead
            self.session.delete(self._url(response.headers["Location"]), timeout=30)
            self.upload(repo, blob)
            return
        _check(response, 201)

    def put_manifest(self, repo: str, reference: str, manifest: Manifest) -> None:
        response = self.session.put(
            self._url(f"/v2/{repo}/manifests/{reference}"),
            data=manifest.data,
            headers={"Content-Type": manifest.media_type},
            timeout=30,
        )
        _check(response, 201)
        if response.headers.get("Docker-Content-Digest") != manifest.digest:
            raise RuntimeError(
                f"{repo}:{reference} stored as {response.headers.get('Docker-Content-Digest')}"
            )


def _check(response: requests.Response, status: int) -> None:
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.url} -> {response.status_code}: {response.text[:300]}"
        )


def _run_all(jobs: list[Callable[[], None]], workers: int) -> None:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()


def push(
    base_url: str,
    seeded: Plan,
    *,
    auth: requests.auth.AuthBase | tuple[str, str] | None = None,
    workers: int = 6,
) -> None:
    """Push ``seeded`` into the registry at ``base_url``, in the order a registry accepts it.

    Phases with a barrier between them, each parallel: shared layers into the
    source repository; layers mounted and configs uploaded everywhere; index
    children by digest; then every tag.
    """
    pusher = Pusher(base_url, auth)
    for layer in seeded.layers:
        pusher.upload(seeded.source, layer)
    layer_digests = {layer.digest for layer in seeded.layers}

    blob_jobs: list[Callable[[], None]] = []
    child_jobs: list[Callable[[], None]] = []
    tag_jobs: list[Callable[[], None]] = []
    for repo, by_tag in seeded.repos.items():
        blobs: dict[str, Blob] = {}
        children: dict[str, Manifest] = {}
        for tag, manifest in by_tag.items():
            for kid in manifest.children:
                children[kid.digest] = kid
            for image in (manifest, *manifest.children):
                blobs.update({blob.digest: blob for blob in image.blobs})
            tag_jobs.append(lambda r=repo, t=tag, m=manifest: pusher.put_manifest(r, t, m))
        for digest, blob in blobs.items():
            if digest in layer_digests:
                if repo != seeded.source:
                    blob_jobs.append(lambda r=repo, b=blob: pusher.mount(r, b, seeded.source))
            else:
                blob_jobs.append(lambda r=repo, b=blob: pusher.upload(r, b))
        child_jobs += [lambda r=repo, k=kid: pusher.put_manifest(r, k.digest, k) for kid in children.values()]
    for jobs in (blob_jobs, child_jobs, tag_jobs):
        _run_all(jobs, workers)


def __getattr__(name: str) -> Seed:
    # ``seed.SEED``: the default seed's description, built on first use (about 0.15 s).
    if name == "SEED":
        return describe()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
