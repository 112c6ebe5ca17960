"""Harbor's REST API (/api/v2.0) emulated in front of a real distribution registry.

Harbor cannot be installed in the lab, so this server answers the subset of
Harbor's API a registry browser uses, shaped as ``tests/lab/reference/harbor/swagger.yaml``
says (tests/lab/test_harbor.py validates every route against it).  What a
registry knows (repositories, tags, manifests, configs, sizes) is read live from
the backend; what only Harbor has (projects' metadata, labels, scan overviews,
accessories, pull counts, times) is derived deterministically from names and
digests, so tests can rely on it.

``/v2/`` is the backend registry itself, proxied behind Harbor's token flow
(``/service/token``), so the API and the registry always agree.

Run: ``python -m tests.lab.harbor_emulator --port P --backend URL --config users.json``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

API = "/api/v2.0"
MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
VULN_MIME = "application/vnd.security.vulnerability.report; version=1.1"
HARBOR_VULN_MIME = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"
#: Harbor's own epoch for everything it would have recorded (push, creation).
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
MAX_PAGE_SIZE = 100
SEVERITIES = ("Critical", "High", "Medium", "Low")


class ApiError(Exception):
    """An error answered as Harbor does: ``{"errors": [{"code", "message"}]}``."""

    CODES = {
        400: "BAD_REQUEST",
        401: "UNAUTHORIZED",
        403: "FORBIDDEN",
        404: "NOT_FOUND",
        405: "METHOD_NOT_ALLOWED",
        412: "PRECONDITION",
        422: "UNPROCESSABLE_ENTITY",
        500: "UNKNOWN",
    }

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"errors": [{"code": self.CODES.get(self.status, "UNKNOWN"), "message": self.message}]}


# --- deterministic Harbor-only data ---------------------------------------------------------


def _h(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\0".join(parts).encode()).digest()[:8], "big")


def stable_id(*parts: str) -> int:
    """An id that survives restarts and needs no database (fits Harbor's int32 project ids)."""
    return _h(*parts) % 2_000_000_000 + 1000


def stamp(seconds_after_epoch: int) -> str:
    return (EPOCH + timedelta(seconds=seconds_after_epoch)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def derived_time(*parts: str) -> str:
    return stamp(_h(*parts) % (300 * 86400))


GLOBAL_LABELS = [
    {"id": 1, "name": "production", "description": "Running in production", "color": "#C92100"},
    {"id": 2, "name": "photon", "description": "Built on Photon OS", "color": "#0065AB"},
    {"id": 3, "name": "deprecated", "description": "Do not deploy", "color": "#F57600"},
]


def label_dicts() -> list[dict[str, Any]]:
    return [
        {**lab, "scope": "g", "project_id": 0, "creation_time": stamp(0), "update_time": stamp(0)}
        for lab in GLOBAL_LABELS
    ]


def labels_for(digest: str) -> list[dict[str, Any]]:
    bits = _h("labels", digest)
    return [lab for lab in label_dicts() if bits >> lab["id"] & 1]


def scan_overview_for(digest: str, mime: str) -> dict[str, Any] | None:
    """One in five artifacts is "not scanned" (Harbor then omits scan_overview)."""
    seed = _h("scan", digest)
    if seed % 5 == 0:
        return None
    counts = {sev: (seed >> (8 * i)) % (4 if i == 0 else 12) for i, sev in enumerate(SEVERITIES)}
    counts = {sev: n for sev, n in counts.items() if n}
    total = sum(counts.values())
    worst = next((sev for sev in SEVERITIES if counts.get(sev)), "None")
    start = _h("scan-start", digest) % (300 * 86400) + 86400
    duration = 5 + seed % 120
    return {
        mime: {
            "report_id": str(uuid.UUID(int=_h("report", digest) << 64 | _h("report2", digest))),
            "scan_status": "Success",
            "severity": worst,
            "duration": duration,
            "summary": {"total": total, "fixable": total // 2, "summary": counts},
            "start_time": stamp(start),
            "end_time": stamp(start + duration),
            "complete_percent": 100,
            "scanner": {"name": "Trivy", "vendor": "Aqua Security", "version": "v0.50.1"},
        }
    }


def accessories_for(digest: str, repo: str, artifact_id: int) -> list[dict[str, Any]]:
    """Cosign signatures on two thirds of the artifacts, an SBOM as well on one third."""
    kinds = [[], ["signature.cosign"], ["signature.cosign", "harbor.sbom"]][_h("acc", digest) % 3]
    out = []
    for kind in kinds:
        acc_digest = "sha256:" + hashlib.sha256(f"{digest}:{kind}".encode()).hexdigest()
        out.append(
            {
                "id": stable_id("accessory", acc_digest),
                "artifact_id": stable_id("artifact", repo, acc_digest),
                "subject_artifact_id": artifact_id,
                "subject_artifact_digest": digest,
                "subject_artifact_repo": repo,
                "size": 500 + _h("accsize", acc_digest) % 4000,
                "digest": acc_digest,
                "type": kind,
                "icon": "",
                "creation_time": derived_time("acc-time", acc_digest),
            }
        )
    return out


# --- the backend registry ---------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    body: bytes
    doc: dict[str, Any]

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


class Backend:
    """A distribution registry reached over keep-alive connections, one per thread."""

    def __init__(self, url: str, user: str = "", password: str = "") -> None:
        parts = urlsplit(url)
        self.scheme, self.netloc = parts.scheme, parts.netloc
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode() if user else ""
        self._local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            conn = cls(self.netloc, timeout=30)
            self._local.conn = conn
        return conn

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        hdrs = dict(headers or {})
        if self.auth:
            hdrs.setdefault("Authorization", self.auth)
        for attempt in (1, 2):
            conn = self._conn()
            try:
                conn.request(method, path, body=body, headers=hdrs)
                resp = conn.getresponse()
                data = resp.read()
                return resp.status, resp.headers, data
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def catalog(self) -> list[str]:
        names: list[str] = []
        path: str | None = "/v2/_catalog?n=1000"
        while path:
            status, headers, data = self.request("GET", path)
            if status != 200:
                raise ApiError(500, f"backend catalog: HTTP {status}")
            names += json.loads(data).get("repositories") or []
            match = re.search(r"<([^>]+)>", headers.get("Link", ""))
            path = match.group(1) if match else None
        return names

    def tags(self, repo: str) -> list[str]:
        status, _, data = self.request("GET", f"/v2/{repo}/tags/list")
        if status == 404:
            return []
        if status != 200:
            raise ApiError(500, f"backend tags of {repo}: HTTP {status}")
        return json.loads(data).get("tags") or []

    def head(self, repo: str, reference: str) -> str | None:
        status, headers, _ = self.request(
            "HEAD", f"/v2/{repo}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT}
        )
        return headers.get("Docker-Content-Digest") if status == 200 else None

    def manifest(self, repo: str, reference: str) -> Manifest | None:
        status, headers, data = self.request(
            "GET", f"/v2/{repo}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT}
        )
        if status != 200:
            return None
        digest = headers.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(data).hexdigest()
        doc = json.loads(data)
        media_type = doc.get("mediaType") or headers.get("Content-Type", "").split(";")[0]
        return Manifest(digest, media_type, data, doc)

    def blob_json(self, repo: str, digest: str) -> dict[str, Any]:
        status, _, data = self.request("GET", f"/v2/{repo}/blobs/{digest}")
        if status != 200:
            return {}
        try:
            return json.loads(data)
        except ValueError:
            return {}

    def delete_manifest(self, repo: str, digest: str) -> None:
        status, _, data = self.request("DELETE", f"/v2/{repo}/manifests/{digest}")
        if status == 405:
            raise ApiError(412, "deletion is disabled in the backend registry")
        if status not in (202, 404):
            raise ApiError(500, f"backend delete {repo}@{digest}: HTTP {status} {data[:200]!r}")

    def put_manifest(self, repo: str, reference: str, manifest: Manifest) -> None:
        status, _, data = self.request(
            "PUT",
            f"/v2/{repo}/manifests/{reference}",
            body=manifest.body,
            headers={"Content-Type": manifest.media_type},
        )
        if status != 201:
            raise ApiError(500, f"backend put {repo}:{reference}: HTTP {status} {data[:200]!r}")


# --- Harbor's view of the backend -------------------------------------------------------------


@dataclass
class Artifact:
    repo: str
    manifest: Manifest
    tags: list[str]
    size: int
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return self.manifest.digest


class Store:
    """Everything read from the backend, cached by what cannot change (digests) plus per-repo
    tag resolutions that every write through the emulator invalidates."""

    def __init__(self, backend: Backend, public_projects: Iterable[str]) -> None:
        self.backend = backend
        self.public = set(public_projects)
        self._lock = threading.RLock()
        self._manifests: dict[str, Manifest] = {}
        self._configs: dict[str, dict[str, Any]] = {}
        self._tag_digests: dict[str, dict[str, str]] = {}
        #: Digests Harbor keeps as untagged artifacts after a tag delete (the registry can't list them).
        self.untagged: dict[str, set[str]] = {}
        self.deleted_repos: set[str] = set()
        #: One resolution of a repository's tags at a time: a second caller waits and reuses it.
        self._repo_locks: dict[str, threading.Lock] = {}
        #: Leaf requests to the backend only; never submit work that itself uses this pool.
        self.pool = ThreadPoolExecutor(max_workers=8)
        #: Whole repositories (which use ``pool`` inside), kept apart so nesting can't deadlock.
        self.repo_pool = ThreadPoolExecutor(max_workers=4)

    def warm(self) -> None:
        """Resolve every repository's tags once, so the first page a client asks for is fast
        (a 1,000-tag repository costs a HEAD per tag)."""
        for repos in self.projects().values():
            for repo in repos:
                try:
                    self.artifacts(repo)
                except (ApiError, OSError, http.client.HTTPException) as exc:
                    sys.stderr.write(f"warm-up of {repo} failed: {exc!r}\n")

    def invalidate(self, repo: str) -> None:
        with self._lock:
            self._tag_digests.pop(repo, None)

    # projects and repositories

    def projects(self) -> dict[str, list[str]]:
        """Project name -> its repositories.  A name without a project segment can't exist in
        Harbor, so it is not shown; a project outlives its deleted repositories, as in Harbor."""
        out: dict[str, list[str]] = {name: [] for name in self.public}
        for repo in self.backend.catalog():
            if "/" not in repo:
                continue
            repos = out.setdefault(repo.split("/", 1)[0], [])
            if repo not in self.deleted_repos:
                repos.append(repo)
        return out

    # artifacts

    def _manifest(self, repo: str, digest: str) -> Manifest | None:
        cached = self._manifests.get(digest)
        if cached:
            return cached
        got = self.backend.manifest(repo, digest)
        if got:
            self._manifests[got.digest] = got
        return got

    def _config(self, repo: str, manifest: Manifest) -> dict[str, Any]:
        digest = (manifest.doc.get("config") or {}).get("digest")
        if not digest:
            return {}
        if digest not in self._configs:
            self._configs[digest] = self.backend.blob_json(repo, digest)
        return self._configs[digest]

    def tag_digests(self, repo: str) -> dict[str, str]:
        with self._lock:
            repo_lock = self._repo_locks.setdefault(repo, threading.Lock())
        with repo_lock:
            return self._resolve_tags(repo)

    def _resolve_tags(self, repo: str) -> dict[str, str]:
        tags = self.backend.tags(repo)
        with self._lock:
            known = dict(self._tag_digests.get(repo, {}))
        missing = [t for t in tags if t not in known]
        for tag, digest in zip(
            missing, self.pool.map(lambda t: self.backend.head(repo, t), missing), strict=True
        ):
            if digest:
                known[tag] = digest
        current = {t: known[t] for t in tags if t in known}
        with self._lock:
            self._tag_digests[repo] = current
        return current

    def _size(self, repo: str, manifest: Manifest) -> int:
        if manifest.is_index:
            children = [self._manifest(repo, m["digest"]) for m in manifest.doc.get("manifests", [])]
            return len(manifest.body) + sum(self._size(repo, c) for c in children if c)
        blobs = [manifest.doc.get("config") or {}, *manifest.doc.get("layers", [])]
        return len(manifest.body) + sum(int(b.get("size", 0)) for b in blobs)

    def artifacts(self, repo: str) -> list[Artifact]:
        """Harbor's artifact list: tagged manifests and untagged ones it remembers, but not the
        children of an index (Harbor hides those unless they carry a tag)."""
        by_digest: dict[str, list[str]] = {}
        for tag, digest in sorted(self.tag_digests(repo).items()):
            by_digest.setdefault(digest, []).append(tag)
        for digest in list(self.untagged.get(repo, ())):
            if digest not in by_digest and self.backend.head(repo, digest):
                by_digest[digest] = []
        digests = list(by_digest)
        manifests = dict(zip(digests, self.pool.map(lambda d: self._manifest(repo, d), digests), strict=True))
        configs = [m for m in manifests.values() if m and not m.is_index]
        list(self.pool.map(lambda m: self._config(repo, m), configs))
        children = {
            c["digest"] for m in manifests.values() if m and m.is_index for c in m.doc.get("manifests", [])
        }
        out = []
        for digest, tags in by_digest.items():
            manifest = manifests[digest]
            if manifest is None or (digest in children and not tags):
                continue
            out.append(
                Artifact(repo, manifest, tags, self._size(repo, manifest), self._config(repo, manifest))
            )
        return out

    def artifact(self, repo: str, reference: str) -> Artifact | None:
        if reference.startswith("sha256:"):
            digest = reference if self.backend.head(repo, reference) else ""
            tags = sorted(t for t, d in self.tag_digests(repo).items() if d == digest)
        else:
            digest = self.tag_digests(repo).get(reference, "")
            tags = sorted(t for t, d in self.tag_digests(repo).items() if d == digest)
        manifest = self._manifest(repo, digest) if digest else None
        if manifest is None:
            return None
        return Artifact(repo, manifest, tags, self._size(repo, manifest), self._config(repo, manifest))

    # writes

    def delete_artifact(self, art: Artifact) -> None:
        repo = art.repo
        try:
            self.backend.delete_manifest(repo, art.digest)
            if art.manifest.is_index:
                still_tagged = set(self.tag_digests(repo).values())
                for child in art.manifest.doc.get("manifests", []):
                    if child["digest"] not in still_tagged:
                        self.backend.delete_manifest(repo, child["digest"])
        finally:
            self.untagged.get(repo, set()).discard(art.digest)
            self.invalidate(repo)

    def delete_tag(self, art: Artifact, tag: str) -> None:
        """The registry deletes by digest only, taking every tag with it: put back the manifest
        under the other tags (and by digest, so the artifact survives untagged as in Harbor)."""
        repo = art.repo
        try:
            self.backend.delete_manifest(repo, art.digest)
            self.backend.put_manifest(repo, art.digest, art.manifest)
            for other in art.tags:
                if other != tag:
                    self.backend.put_manifest(repo, other, art.manifest)
            if len(art.tags) == 1:
                self.untagged.setdefault(repo, set()).add(art.digest)
        finally:
            self.invalidate(repo)

    def delete_repository(self, repo: str) -> None:
        for art in self.artifacts(repo):
            self.delete_artifact(art)
        self.deleted_repos.add(repo)


# --- users -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class User:
    name: str
    password: str
    user_id: int
    sysadmin: bool = False
    #: Projects a robot may act on; "*" means all of them.
    projects: frozenset[str] = frozenset()
    actions: frozenset[str] = frozenset({"read"})

    @property
    def robot(self) -> bool:
        return self.name.startswith("robot$")


ANONYMOUS = User("", "", 0)


def load_users(config: dict[str, Any]) -> dict[str, User]:
    users = {}
    for i, spec in enumerate(config.get("users", []), start=1):
        users[spec["name"]] = User(
            name=spec["name"],
            password=spec["password"],
            user_id=spec.get("user_id", i),
            sysadmin=bool(spec.get("sysadmin")),
            projects=frozenset(spec.get("projects", [])),
            actions=frozenset(spec.get("actions", ["read"])),
        )
    return users


# --- request parsing ---------------------------------------------------------------------------


@dataclass
class Query:
    """Harbor's ``q``: comma-separated ``k=v``, ``k=~v``, ``k=[a~b]``, ``k={a b}``, ``k=(a b)``."""

    terms: list[tuple[str, str, Any]]

    @classmethod
    def parse(cls, raw: str) -> Query:
        terms: list[tuple[str, str, Any]] = []
        for part in _split_query(raw):
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep or not key:
                raise ApiError(400, f"invalid query string: {raw}")
            if value.startswith("~"):
                terms.append((key, "fuzzy", value[1:]))
            elif value.startswith("[") and value.endswith("]") and "~" in value:
                low, high = value[1:-1].split("~", 1)
                terms.append((key, "range", (low.strip(" '\""), high.strip(" '\""))))
            elif value.startswith("{") and value.endswith("}"):
                terms.append((key, "or", value[1:-1].split()))
            elif value.startswith("(") and value.endswith(")"):
                terms.append((key, "and", value[1:-1].replace(",", " ").split()))
            else:
                terms.append((key, "exact", value))
        return cls(terms)

    def match(self, key: str, value: str | None) -> bool:
        for k, op, want in self.terms:
            if k != key:
                continue
            if value is None:
                return False
            ok = _term_matches(op, want, value)
            if not ok:
                return False
        return True

    def get(self, key: str) -> tuple[str, Any] | None:
        return next(((op, want) for k, op, want in self.terms if k == key), None)


def _term_matches(op: str, want: Any, value: str) -> bool:
    if op == "fuzzy":
        return want in value
    if op in ("or", "and"):
        return value in want
    if op == "range":
        return bool(want[0] <= value <= want[1])
    return value == want


def _split_query(raw: str) -> list[str]:
    """Split on commas that are not inside brackets (``labels=(1,2)`` stays one term)."""
    parts, depth, cur = [], 0, ""
    for ch in raw:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p for p in parts if p.strip()]


def _bool(params: dict[str, str], name: str, default: bool) -> bool:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise ApiError(422, f'validation failure list:\n{name} in query must be of type boolean: "{raw}"')


def _int(params: dict[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiError(
            422, f'validation failure list:\n{name} in query must be of type int64: "{raw}"'
        ) from None


# --- the HTTP server ---------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    raw_query: str
    params: dict[str, str]
    headers: Any
    user: User
    route_args: dict[str, str] = field(default_factory=dict)


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


Handler = Callable[["Harbor", Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    #: The path exactly as the spec writes it (under basePath), e.g. ``/projects/{project_name}``.
    spec_path: str
    handler: Handler

    def pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.spec_path)
        return re.compile(f"^{regex}$")


class Harbor:
    """The API's behaviour, independent of the HTTP plumbing."""

    def __init__(self, store: Store, users: dict[str, User], external_url: str, secret: bytes) -> None:
        self.store = store
        self.users = users
        self.external_url = external_url
        self.secret = secret

    # authorisation, as Harbor's RequireProjectAccess: anonymous gets 401, a known user 403

    def can(self, user: User, project: str, action: str = "read") -> bool:
        if user.sysadmin:
            return True
        if action == "read" and project in self.store.public:
            return True
        return (
            bool(user.name) and ("*" in user.projects or project in user.projects) and action in user.actions
        )

    def require(self, user: User, project: str, action: str = "read") -> None:
        if not self.can(user, project, action):
            if not user.name:
                raise ApiError(401, "unauthorized")
            raise ApiError(403, f"{user.name} has no permission to {action} in project {project}")

    def project_repos(self, req: Request, name_or_id: str) -> tuple[str, list[str]]:
        projects = self.store.projects()
        name = name_or_id
        is_name = str(req.headers.get("X-Is-Resource-Name", "")).lower() == "true"
        if not is_name and name_or_id.isdigit():
            name = next((p for p in projects if self.project_id(p) == int(name_or_id)), "")
        if name not in projects:
            if not req.user.name:
                raise ApiError(401, "unauthorized")
            raise ApiError(404, f"project {name_or_id} not found")
        self.require(req.user, name)
        return name, projects[name]

    @staticmethod
    def project_id(name: str) -> int:
        return 1 if name == "library" else stable_id("project", name) % 100_000 + 2

    # representations

    def project_dict(self, name: str, repos: list[str], user: User) -> dict[str, Any]:
        pid = self.project_id(name)
        roles = [] if not user.name else [1] if user.sysadmin else [3]
        if user.name and not self.can(user, name) and name in self.store.public:
            roles = []
        out: dict[str, Any] = {
            "project_id": pid,
            "owner_id": 1,
            "name": name,
            "registry_id": 0,
            "creation_time": derived_time("project", name),
            "update_time": derived_time("project", name),
            "deleted": False,
            "owner_name": "admin",
            "togglable": user.sysadmin,
            "current_user_role_ids": roles,
            "repo_count": len(repos),
            "metadata": {"public": "true" if name in self.store.public else "false", "auto_scan": "true"},
            "cve_allowlist": {
                "id": pid,
                "project_id": pid,
                "items": [],
                "creation_time": stamp(0),
                "update_time": stamp(0),
            },
        }
        if roles:
            out["current_user_role_id"] = roles[0]
        return out

    def repository_dict(self, repo: str, *, with_count: bool = True) -> dict[str, Any]:
        project = repo.split("/", 1)[0]
        out: dict[str, Any] = {
            "id": stable_id("repository", repo),
            "project_id": self.project_id(project),
            "name": repo,
            "description": "",
            "artifact_count": len(self.store.artifacts(repo)) if with_count else 0,
            "pull_count": _h("pulls", repo) % 5000,
            "creation_time": derived_time("repository", repo),
            "update_time": derived_time("repository-update", repo),
        }
        return out

    def artifact_dict(self, art: Artifact, opts: dict[str, Any]) -> dict[str, Any]:
        project = art.repo.split("/", 1)[0]
        art_id = stable_id("artifact", art.repo, art.digest)
        repo_id = stable_id("repository", art.repo)
        manifest = art.manifest
        out: dict[str, Any] = {
            "id": art_id,
            "type": "IMAGE",
            "media_type": (manifest.doc.get("config") or {}).get("mediaType", manifest.media_type),
            "manifest_media_type": manifest.media_type,
            "project_id": self.project_id(project),
            "repository_id": repo_id,
            "repository_name": art.repo,
            "digest": art.digest,
            "size": art.size,
            "icon": "sha256:0048162a053eef4d4ce3fe7518615bef084403614f8bca43b40ae2e762e11e06",
            "push_time": derived_time("push", art.repo, art.digest),
            "pull_time": derived_time("pull", art.repo, art.digest),
            "extra_attrs": {},
            "annotations": manifest.doc.get("annotations") or {},
            "references": [],
        }
        if manifest.doc.get("artifactType"):
            out["artifact_type"] = manifest.doc["artifactType"]
        if manifest.is_index:
            out["references"] = [
                self.reference_dict(art_id, art.repo, child) for child in manifest.doc["manifests"]
            ]
        else:
            # Harbor copies these from the image config (strings and the config section).
            cfg = art.config
            out["extra_attrs"] = {
                k: v
                for k, v in {
                    "architecture": cfg.get("architecture"),
                    "os": cfg.get("os"),
                    "created": cfg.get("created"),
                    "author": cfg.get("author", ""),
                    "config": cfg.get("config") or {},
                }.items()
                if v is not None
            }
            repo_path = f"{API}/projects/{project}/repositories/{_encode_repo(art.repo)}"
            base = f"{repo_path}/artifacts/{art.digest}/additions"
            out["addition_links"] = {
                "build_history": {"href": f"{base}/build_history", "absolute": False},
                "vulnerabilities": {"href": f"{base}/vulnerabilities", "absolute": False},
            }
        if opts["with_tag"]:
            out["tags"] = [
                self.tag_dict(art, tag, opts.get("with_immutable_status", False)) for tag in art.tags
            ]
        if opts["with_label"]:
            out["labels"] = labels_for(art.digest)
        if opts["with_scan_overview"]:
            overview = scan_overview_for(art.digest, opts["vuln_mime"])
            if overview:
                out["scan_overview"] = overview
        if opts["with_accessory"]:
            out["accessories"] = accessories_for(art.digest, art.repo, art_id)
        return out

    def reference_dict(self, parent_id: int, repo: str, child: dict[str, Any]) -> dict[str, Any]:
        platform = child.get("platform") or {}
        ref: dict[str, Any] = {
            "parent_id": parent_id,
            "child_id": stable_id("artifact", repo, child["digest"]),
            "child_digest": child["digest"],
            "platform": {k: platform[k] for k in ("architecture", "os", "variant") if k in platform},
        }
        if child.get("annotations"):
            ref["annotations"] = child["annotations"]
        if child.get("urls"):
            ref["urls"] = child["urls"]
        return ref

    def tag_dict(self, art: Artifact, tag: str, with_immutable: bool) -> dict[str, Any]:
        return {
            "id": stable_id("tag", art.repo, tag),
            "repository_id": stable_id("repository", art.repo),
            "artifact_id": stable_id("artifact", art.repo, art.digest),
            "name": tag,
            "push_time": derived_time("push", art.repo, art.digest, tag),
            "pull_time": derived_time("pull", art.repo, art.digest, tag),
            "immutable": False,
        }

    # tokens for /v2/ (HS256 JWTs signed with a per-process secret; clients treat them as opaque)

    def issue_token(self, user: User, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            granted = [a for a in actions.split(",") if self._grant(user, kind, name, a)]
            access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": "harbor-token-issuer",
            "sub": user.name,
            "aud": "harbor-registry",
            "iat": now,
            "nbf": now,
            "exp": now + 1800,
            "access": access,
        }
        return _jwt(claims, self.secret)

    def _grant(self, user: User, kind: str, name: str, action: str) -> bool:
        if kind == "registry" and name == "catalog":
            return user.sysadmin
        if kind != "repository" or "/" not in name:
            return False
        project = name.split("/", 1)[0]
        wanted = {"pull": "read", "push": "push", "delete": "delete", "*": "push"}.get(action)
        return bool(wanted) and self.can(user, project, wanted or "")

    def token_claims(self, token: str) -> dict[str, Any] | None:
        try:
            head, payload, sig = token.split(".")
        except ValueError:
            return None
        want = hmac.new(self.secret, f"{head}.{payload}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(_b64d(sig), want):
            return None
        claims = json.loads(_b64d(payload))
        return claims if claims.get("exp", 0) > time.time() else None


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _jwt(claims: dict[str, Any], secret: bytes) -> str:
    head = _b64e(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64e(json.dumps(claims).encode())
    sig = hmac.new(secret, f"{head}.{payload}".encode(), hashlib.sha256).digest()
    return f"{head}.{payload}.{_b64e(sig)}"


def _encode_repo(repo: str) -> str:
    """The part of a repository name after its project, URL-encoded twice as Harbor wants it."""
    return quote(quote(repo.split("/", 1)[1], safe=""), safe="")


# --- paging, as Harbor's BaseAPI.Links --------------------------------------------------------


def paginate(req: Request, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
    page = max(_int(req.params, "page", 1), 1)
    size = _int(req.params, "page_size", 10)
    if size > MAX_PAGE_SIZE:
        raise ApiError(
            422,
            f"validation failure list:\npage_size in query should be less than or equal to {MAX_PAGE_SIZE}",
        )
    total = len(items)
    headers = {"X-Total-Count": str(total)}
    if size <= 0:
        return items, headers
    links = []
    if page > 1 and (page - 1) * size < total:
        links.append(f'<{_page_url(req, page - 1, size)}>; rel="prev"')
    if size * page < total:
        links.append(f'<{_page_url(req, page + 1, size)}>; rel="next"')
    if links:
        headers["Link"] = " , ".join(links)
    return items[(page - 1) * size : page * size], headers


def _page_url(req: Request, page: int, size: int) -> str:
    # Harbor re-encodes the query sorted by key, then unescapes it again, and keeps the
    # request's path as sent (double-encoded repository names stay double-encoded).
    query = parse_qs(req.raw_query, keep_blank_values=True)
    query["page"] = [str(page)]
    query["page_size"] = [str(size)]
    encoded = urlencode(sorted((k, v) for k, vs in query.items() for v in vs))
    return f"{req.path}?{unquote(encoded.replace('+', '%20'))}"


def _sorted(items: list[dict[str, Any]], sort: str | None, default: str) -> list[dict[str, Any]]:
    for key in reversed((sort or default).split(",")):
        key = key.strip()
        if not key:
            continue
        desc = key.startswith("-")
        name = key.lstrip("-")
        items = sorted(items, key=lambda item: (item.get(name) is None, item.get(name) or ""), reverse=desc)
    return items


# --- handlers ----------------------------------------------------------------------------------


def get_ping(h: Harbor, req: Request) -> Response:
    return Response(body="Pong", content_type="text/plain")


def get_health(h: Harbor, req: Request) -> Response:
    names = ["core", "database", "jobservice", "portal", "redis", "registry", "registryctl", "trivy"]
    status = "healthy"
    components = [{"name": n, "status": "healthy"} for n in names]
    try:
        h.store.backend.request("GET", "/v2/")
    except OSError as exc:
        status = "unhealthy"
        components[names.index("registry")] = {"name": "registry", "status": "unhealthy", "error": str(exc)}
    return Response(body={"status": status, "components": components})


def get_systeminfo(h: Harbor, req: Request) -> Response:
    info: dict[str, Any] = {
        "auth_mode": "db_auth",
        "primary_auth_mode": False,
        "harbor_version": "v2.11.0-emulated",
        "self_registration": False,
        "has_ca_root": False,
        "banner_message": "",
        "current_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "oidc_provider_name": "",
    }
    if req.user.name:
        # Harbor leaves these out for anonymous callers.
        info.update(
            {
                "registry_url": urlsplit(h.external_url).netloc,
                "external_url": h.external_url,
                "project_creation_restriction": "adminonly",
                "read_only": False,
                "notification_enable": True,
                "registry_storage_provider_name": "filesystem",
            }
        )
    return Response(body=info)


def get_current_user(h: Harbor, req: Request) -> Response:
    user = req.user
    if not user.name:
        raise ApiError(401, "UnAuthorize")
    if user.robot:
        raise ApiError(412, "can't get user info, the security context is not a local user")
    return Response(
        body={
            "user_id": user.user_id,
            "username": user.name,
            "email": f"{user.name}@lab.invalid",
            "realname": user.name,
            "comment": "",
            "sysadmin_flag": user.sysadmin,
            "admin_role_in_auth": False,
            "creation_time": stamp(0),
            "update_time": stamp(0),
        }
    )


def list_projects(h: Harbor, req: Request) -> Response:
    q = Query.parse(req.params.get("q", ""))
    public = req.params.get("public")
    name = req.params.get("name")
    rows = []
    for project, repos in h.store.projects().items():
        if not h.can(req.user, project):
            continue
        is_public = project in h.store.public
        if public not in (None, "") and _bool(req.params, "public", False) != is_public:
            continue
        if name and project != name:
            continue
        pid = str(h.project_id(project))
        if not (
            q.match("name", project)
            and q.match("project_id", pid)
            and q.match("public", str(is_public).lower())
        ):
            continue
        rows.append(h.project_dict(project, repos, req.user))
    rows = _sorted(rows, req.params.get("sort"), "name")
    page, headers = paginate(req, rows)
    return Response(body=page, headers=headers)


def head_project(h: Harbor, req: Request) -> Response:
    name = req.params.get("project_name")
    if not name:
        raise ApiError(422, "validation failure list:\nproject_name in query is required")
    if name not in h.store.projects():
        raise ApiError(404, f"project {name} not found")
    return Response(body=None)


def get_project(h: Harbor, req: Request) -> Response:
    name, repos = h.project_repos(req, req.route_args["project_name_or_id"])
    return Response(body=h.project_dict(name, repos, req.user))


def get_project_summary(h: Harbor, req: Request) -> Response:
    _, repos = h.project_repos(req, req.route_args["project_name_or_id"])
    return Response(
        body={
            "repo_count": len(repos),
            "project_admin_count": 1,
            "maintainer_count": 0,
            "developer_count": 0,
            "guest_count": 0,
            "limited_guest_count": 0,
        }
    )


def _repository_rows(h: Harbor, req: Request, repos: list[str]) -> Response:
    q = Query.parse(req.params.get("q", ""))
    names = [r for r in repos if q.match("name", r)]
    light = [h.repository_dict(r, with_count=False) for r in names]
    light = _sorted(light, req.params.get("sort"), "name")
    page, headers = paginate(req, light)
    counted = list(h.store.repo_pool.map(lambda row: h.repository_dict(row["name"]), page))
    return Response(body=counted, headers=headers)


def list_all_repositories(h: Harbor, req: Request) -> Response:
    repos = [r for p, rs in h.store.projects().items() if h.can(req.user, p) for r in rs]
    return _repository_rows(h, req, repos)


def list_repositories(h: Harbor, req: Request) -> Response:
    _, repos = h.project_repos(req, req.route_args["project_name"])
    return _repository_rows(h, req, repos)


def _repo(h: Harbor, req: Request, action: str = "read") -> str:
    project, repos = h.project_repos(req, req.route_args["project_name"])
    repo = f"{project}/{unquote(req.route_args['repository_name'])}"
    h.require(req.user, project, action)
    if repo not in repos:
        raise ApiError(404, f"repository {repo} not found")
    return repo


def get_repository(h: Harbor, req: Request) -> Response:
    return Response(body=h.repository_dict(_repo(h, req)))


def delete_repository(h: Harbor, req: Request) -> Response:
    h.store.delete_repository(_repo(h, req, "delete"))
    return Response(body=None)


def _artifact_options(req: Request, *, with_tag: bool = True) -> dict[str, Any]:
    accept = req.headers.get("X-Accept-Vulnerabilities") or f"{VULN_MIME}, {HARBOR_VULN_MIME}"
    mimes = [m.strip() for m in accept.split(",") if m.strip()]
    # "application/vnd.security.vulnerability.report; version=1.1" splits on its own comma-free
    # form; pick the first one Harbor supports.
    mime = next((m for m in mimes if m in (VULN_MIME, HARBOR_VULN_MIME)), VULN_MIME)
    return {
        "with_tag": _bool(req.params, "with_tag", with_tag),
        "with_label": _bool(req.params, "with_label", False),
        "with_scan_overview": _bool(req.params, "with_scan_overview", False),
        "with_accessory": _bool(req.params, "with_accessory", False),
        "with_immutable_status": _bool(req.params, "with_immutable_status", False),
        "vuln_mime": mime,
    }


def _artifact_matches(q: Query, art: Artifact) -> bool:
    tags_term = q.get("tags")
    if tags_term:
        op, want = tags_term
        if op == "exact" and want == "*":
            ok = bool(art.tags)
        elif op == "exact" and want == "nil":
            ok = not art.tags
        elif op == "fuzzy":
            ok = any(want in t for t in art.tags)
        else:
            ok = any(Query([("tags", op, want)]).match("tags", t) for t in art.tags)
        if not ok:
            return False
    labels_term = q.get("labels")
    if labels_term:
        have = {str(lab["id"]) for lab in labels_for(art.digest)}
        if not set(labels_term[1] if isinstance(labels_term[1], list) else [labels_term[1]]) <= have:
            return False
    return (
        q.match("digest", art.digest)
        and q.match("media_type", art.manifest.media_type)
        and q.match("type", "IMAGE")
    )


def list_artifacts(h: Harbor, req: Request) -> Response:
    repo = _repo(h, req)
    q = Query.parse(req.params.get("q", ""))
    opts = _artifact_options(req)
    arts = [a for a in h.store.artifacts(repo) if _artifact_matches(q, a)]
    rows = [h.artifact_dict(a, opts) for a in arts]
    rows = _sorted(rows, req.params.get("sort"), "-push_time,digest")
    page, headers = paginate(req, rows)
    return Response(body=page, headers=headers)


def _artifact(h: Harbor, req: Request, action: str = "read") -> Artifact:
    repo = _repo(h, req, action)
    reference = req.route_args["reference"]
    art = h.store.artifact(repo, reference)
    if art is None:
        raise ApiError(404, f"artifact {repo}:{reference} not found")
    return art


def get_artifact(h: Harbor, req: Request) -> Response:
    paginate(req, [])  # validates page/page_size like the spec's parameters
    art = _artifact(h, req)
    return Response(body=h.artifact_dict(art, _artifact_options(req)))


def delete_artifact(h: Harbor, req: Request) -> Response:
    h.store.delete_artifact(_artifact(h, req, "delete"))
    return Response(body=None)


def list_tags(h: Harbor, req: Request) -> Response:
    art = _artifact(h, req)
    q = Query.parse(req.params.get("q", ""))
    rows = [h.tag_dict(art, t, False) for t in art.tags if q.match("name", t)]
    rows = _sorted(rows, req.params.get("sort"), "name")
    page, headers = paginate(req, rows)
    return Response(body=page, headers=headers)


def delete_tag(h: Harbor, req: Request) -> Response:
    art = _artifact(h, req, "delete")
    tag = req.route_args["tag_name"]
    if tag not in art.tags:
        raise ApiError(404, f"tag {tag} not found on artifact {art.repo}@{art.digest}")
    h.store.delete_tag(art, tag)
    return Response(body=None)


def list_accessories(h: Harbor, req: Request) -> Response:
    art = _artifact(h, req)
    q = Query.parse(req.params.get("q", ""))
    rows = accessories_for(art.digest, art.repo, stable_id("artifact", art.repo, art.digest))
    rows = [r for r in rows if q.match("type", r["type"]) and q.match("digest", r["digest"])]
    page, headers = paginate(req, _sorted(rows, req.params.get("sort"), "-creation_time"))
    return Response(body=page, headers=headers)


def list_labels(h: Harbor, req: Request) -> Response:
    scope = req.params.get("scope", "")
    if scope not in ("", "g", "p"):
        raise ApiError(400, f"invalid scope: {scope}")
    rows: list[dict[str, Any]] = []
    if scope == "p":
        if not req.params.get("project_id"):
            raise ApiError(400, "must specify project_id when scope is p")
    else:
        rows = label_dicts()
    q = Query.parse(req.params.get("q", ""))
    name = req.params.get("name")
    rows = [r for r in rows if q.match("name", r["name"]) and (not name or name in r["name"])]
    page, headers = paginate(req, _sorted(rows, req.params.get("sort"), "name"))
    return Response(body=page, headers=headers)


ROUTES: list[Route] = [
    Route("GET", "/ping", get_ping),
    Route("GET", "/health", get_health),
    Route("GET", "/systeminfo", get_systeminfo),
    Route("GET", "/users/current", get_current_user),
    Route("GET", "/labels", list_labels),
    Route("GET", "/projects", list_projects),
    Route("HEAD", "/projects", head_project),
    Route("GET", "/projects/{project_name_or_id}", get_project),
    Route("GET", "/projects/{project_name_or_id}/summary", get_project_summary),
    Route("GET", "/repositories", list_all_repositories),
    Route("GET", "/projects/{project_name}/repositories", list_repositories),
    Route("GET", "/projects/{project_name}/repositories/{repository_name}", get_repository),
    Route("DELETE", "/projects/{project_name}/repositories/{repository_name}", delete_repository),
    Route("GET", "/projects/{project_name}/repositories/{repository_name}/artifacts", list_artifacts),
    Route(
        "GET", "/projects/{project_name}/repositories/{repository_name}/artifacts/{reference}", get_artifact
    ),
    Route(
        "DELETE",
        "/projects/{project_name}/repositories/{repository_name}/artifacts/{reference}",
        delete_artifact,
    ),
    Route(
        "GET", "/projects/{project_name}/repositories/{repository_name}/artifacts/{reference}/tags", list_tags
    ),
    Route(
        "DELETE",
        "/projects/{project_name}/repositories/{repository_name}/artifacts/{reference}/tags/{tag_name}",
        delete_tag,
    ),
    Route(
        "GET",
        "/projects/{project_name}/repositories/{repository_name}/artifacts/{reference}/accessories",
        list_accessories,
    ),
]
_COMPILED = [(route, route.pattern()) for route in ROUTES]


def dispatch(h: Harbor, method: str, path: str) -> tuple[Route, dict[str, str]]:
    """Match like go-swagger: on the path decoded once, so ``a%252Fb`` arrives as ``a%2Fb``."""
    sub = unquote(path[len(API) :]) or "/"
    allowed = False
    for route, pattern in _COMPILED:
        match = pattern.match(sub)
        if match:
            if route.method == method:
                return route, match.groupdict()
            allowed = True
    if allowed:
        raise ApiError(405, f"method {method} is not allowed, but [{', '.join(_methods(sub))}] are")
    raise ApiError(404, f"path {path} was not found")


def _methods(sub: str) -> list[str]:
    return sorted({r.method for r, p in _COMPILED if p.match(sub)})


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "harbor-emulator"
    harbor: Harbor  # set on the subclass made by serve()

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.log_date_time_string()} {format % args}\n")

    # every method goes through one entry point
    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        try:
            if parts.path.startswith("/v2/") or parts.path == "/v2":
                self._registry(parts.path, parts.query)
            elif parts.path == "/service/token":
                self._token(parts.query)
            elif parts.path.startswith(API + "/") or parts.path == API:
                self._api(parts.path, parts.query)
            else:
                raise ApiError(404, f"path {parts.path} was not found")
        except ApiError as err:
            self._send(Response(err.status, err.body()))
        except Exception as exc:  # noqa: BLE001 - Harbor answers 500 with its error envelope
            self.log_error("internal error: %r", exc)
            self._send(Response(500, ApiError(500, "internal server error").body()))

    # authentication

    def _basic_user(self) -> User | None:
        """None when no credentials were sent; raises 401 when they are wrong."""
        header = self.headers.get("Authorization", "")
        if not header.lower().startswith("basic "):
            return None
        try:
            name, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            raise ApiError(401, "unauthorized") from None
        user = self.harbor.users.get(name)
        if user is None or not hmac.compare_digest(user.password, password):
            raise ApiError(401, "unauthorized")
        return user

    def _api(self, path: str, raw_query: str) -> None:
        route, args = dispatch(self.harbor, self.command, path)
        user = self._basic_user() or ANONYMOUS
        params = {k: v[-1] for k, v in parse_qs(raw_query, keep_blank_values=True).items()}
        req = Request(self.command, path, raw_query, params, self.headers, user, args)
        self._send(route.handler(self.harbor, req))

    def _send(self, resp: Response) -> None:
        if resp.body is None:
            data = b""
        elif resp.content_type == "text/plain":
            data = str(resp.body).encode()
        else:
            data = json.dumps(resp.body).encode()
        self.send_response(resp.status)
        self.send_header("X-Request-Id", self.headers.get("X-Request-Id") or str(uuid.uuid4()))
        if data or resp.body is not None:
            self.send_header(
                "Content-Type", resp.content_type + ("; charset=utf-8" if resp.status >= 400 else "")
            )
        for key, value in resp.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    # the Docker token flow, as Harbor's /service/token

    def _token(self, raw_query: str) -> None:
        user = self._basic_user() or ANONYMOUS
        params = parse_qs(raw_query)
        token = self.harbor.issue_token(user, params.get("scope", []))
        issued = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._send(
            Response(body={"token": token, "access_token": token, "expires_in": 1800, "issued_at": issued})
        )

    def _registry(self, path: str, raw_query: str) -> None:
        """Proxy /v2/ to the backend once the caller holds a token (or basic credentials) with
        the scope this request needs, as Harbor's registry proxy does."""
        need = _needed_scope(self.command, path)
        if not self._registry_allowed(need):
            realm = f"{self.harbor.external_url}/service/token"
            challenge = f'Bearer realm="{realm}",service="harbor-registry"'
            if need:
                challenge += f',scope="{need[0]}:{need[1]}:{need[2]}"'
            body = {
                "errors": [
                    {"code": "UNAUTHORIZED", "message": "unauthorized to access repository", "detail": None}
                ]
            }
            self._send(
                Response(
                    401,
                    body,
                    {"WWW-Authenticate": challenge, "Docker-Distribution-API-Version": "registry/2.0"},
                )
            )
            return
        body = self._request_body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
        backend = self.harbor.store.backend
        status, resp_headers, data = backend.request(
            self.command, path + (f"?{raw_query}" if raw_query else ""), body=body, headers=headers
        )
        if self.command in ("PUT", "DELETE") and "/manifests/" in path and status < 300:
            self.harbor.store.invalidate(path[4:].split("/manifests/", 1)[0])
        self.send_response(status)
        for key, value in resp_headers.items():
            if key.lower() in _HOP_HEADERS or key.lower() == "content-length":
                continue
            if key.lower() == "location":
                value = value.replace(f"{backend.scheme}://{backend.netloc}", self.harbor.external_url)
            self.send_header(key, value)
        length = resp_headers.get("Content-Length") if self.command == "HEAD" else str(len(data))
        self.send_header("Content-Length", length or "0")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _registry_allowed(self, need: tuple[str, str, str] | None) -> bool:
        header = self.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            claims = self.harbor.token_claims(header[7:].strip())
            if claims is None:
                return False
            if need is None:
                return True
            return any(
                a["type"] == need[0] and a["name"] == need[1] and need[2] in a["actions"]
                for a in claims.get("access", [])
            )
        try:
            user = self._basic_user()
        except ApiError:
            return False
        if user is None:
            # Anonymous pulls from public projects need no token, as in Harbor.
            return need is not None and need[2] == "pull" and self.harbor._grant(ANONYMOUS, *need)
        return need is None or self.harbor._grant(user, *need)

    def _request_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return (
            self.rfile.read(length) if length else (b"" if self.command in ("PUT", "POST", "PATCH") else None)
        )


_HOP_HEADERS = {
    "authorization",
    "host",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "upgrade",
    "proxy-authorization",
    "proxy-connection",
    "trailer",
}


def _needed_scope(method: str, path: str) -> tuple[str, str, str] | None:
    """The token scope a /v2/ request needs: (type, name, action); None for the /v2/ ping."""
    rest = path[len("/v2/") :] if path.startswith("/v2/") else ""
    if not rest:
        return None
    if rest.rstrip("/") == "_catalog":
        return ("registry", "catalog", "*")
    match = re.match(r"^(.+?)/(manifests|blobs|tags)/", rest)
    name = match.group(1) if match else rest.rsplit("/", 1)[0]
    action = {"GET": "pull", "HEAD": "pull", "DELETE": "delete"}.get(method, "push")
    return ("repository", name, action)


def serve(args: argparse.Namespace) -> None:
    config = json.loads(Path(args.config).read_text()) if args.config else {}
    users = load_users(config) or load_users(
        {"users": [{"name": "admin", "password": "Harbor12345", "sysadmin": True}]}
    )
    backend = Backend(args.backend, config.get("backend_user", ""), config.get("backend_password", ""))
    store = Store(backend, config.get("public_projects", ["library"]))
    external = args.external_url or f"http://127.0.0.1:{args.port}"
    harbor = Harbor(store, users, external, secret=uuid.uuid4().bytes + uuid.uuid4().bytes)
    handler = type("BoundHandler", (RequestHandler,), {"harbor": harbor})
    server = ThreadingHTTPServer((args.host, args.port), handler)
    server.daemon_threads = True
    if args.warm:
        threading.Thread(target=store.warm, name="warm-up", daemon=True).start()
    print(f"harbor emulator on {external} -> {args.backend}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend", required=True, help="URL of the distribution registry")
    parser.add_argument("--config", help="JSON: users, public_projects, backend_user, backend_password")
    parser.add_argument("--external-url", help="the URL clients use (token realm, Location)")
    parser.add_argument("--warm", action="store_true", help="read every repository once at start")
    serve(parser.parse_args(argv))


if __name__ == "__main__":
    main()
