"""Harbor's REST API (``/api/v2.0``), with its registry (``/v2/``) for what only manifests say.

Projects, repositories (artifact and pull counts) and artifacts (tags, labels,
push and pull times, scan overview, accessories) come from the API, paged with
``page``/``page_size`` and ``X-Total-Count``. Repository names go into paths with
their project removed and the rest URL-encoded twice (``a/b`` -> ``a%252Fb``), as
Harbor requires. Layers and per-platform configs come from Harbor's registry
through the Docker token flow, with the same credentials.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from .distribution import DIGEST, DistributionClient, check_reference, check_repository
from .errors import BadResponse, NotFound
from .http import Transport

API = "/api/v2.0"
PROJECT = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
#: The vulnerability report types Harbor's scanners produce; sent so scan_overview is filled.
VULNERABILITY_TYPES = (
    "application/vnd.security.vulnerability.report; version=1.1, "
    "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"
)
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int


def check_project(name: str) -> str:
    if not PROJECT.match(name) or len(name) > 255:
        raise NotFound(f"not a valid Harbor project name: {name[:100]!r}")
    return name


def repository_path(repository: str) -> str:
    """``/projects/P/repositories/REST`` with REST encoded twice."""
    check_repository(repository)
    project, _, rest = repository.partition("/")
    if not rest:
        raise NotFound(f"a Harbor repository name starts with its project: {repository!r}")
    check_project(project)
    return f"{API}/projects/{project}/repositories/{quote(quote(rest, safe=''), safe='')}"


class HarborClient:
    def __init__(self, api: Transport, registry: Transport) -> None:
        self.api = api
        self.registry = DistributionClient(registry)

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        query = f"?{urlencode(params)}" if params else ""
        answer = self.api.request(
            "GET",
            path + query,
            headers={"Accept": "application/json", "X-Accept-Vulnerabilities": VULNERABILITY_TYPES},
        )
        return answer.json(), answer

    def _page(self, path: str, page: int, page_size: int, **params: Any) -> Page:
        size = max(1, min(page_size, MAX_PAGE_SIZE))
        data, answer = self._get(
            path,
            {
                **{k: v for k, v in params.items() if v not in (None, "")},
                "page": max(1, page),
                "page_size": size,
            },
        )
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise BadResponse(f"Harbor's answer to {path} is not a list")
        total_header = answer.headers.get("X-Total-Count", "")
        total = int(total_header) if total_header.isdigit() else len(data)
        return Page(data, total)

    def ping(self) -> None:
        """The API answers and the credentials are accepted (anonymous: public projects only)."""
        self._page(f"{API}/projects", 1, 1)

    def projects(self, page: int = 1, page_size: int = 25, name: str = "") -> Page:
        return self._page(
            f"{API}/projects", page, page_size, q=f"name=~{name}" if name else None, sort="name"
        )

    def repositories(self, project: str, page: int = 1, page_size: int = 25, name: str = "") -> Page:
        path = f"{API}/projects/{check_project(project)}/repositories"
        return self._page(path, page, page_size, q=f"name=~{name}" if name else None, sort="name")

    def artifacts(self, repository: str, page: int = 1, page_size: int = 25) -> Page:
        return self._page(
            f"{repository_path(repository)}/artifacts",
            page,
            page_size,
            with_tag="true",
            with_label="true",
            with_scan_overview="true",
            with_accessory="true",
            sort="-push_time",
        )

    def artifact(self, repository: str, reference: str) -> dict[str, Any]:
        path = f"{repository_path(repository)}/artifacts/{quote(check_reference(reference), safe=':')}"
        data, _ = self._get(
            path,
            {
                "with_tag": "true",
                "with_label": "true",
                "with_scan_overview": "true",
                "with_accessory": "true",
            },
        )
        if not isinstance(data, dict) or not DIGEST.match(str(data.get("digest", ""))):
            raise BadResponse("Harbor's artifact has no digest")
        return data

    def delete_tag(self, repository: str, digest: str, tag: str) -> None:
        path = f"{repository_path(repository)}/artifacts/{quote(check_reference(digest), safe=':')}"
        self.api.request("DELETE", f"{path}/tags/{quote(check_reference(tag), safe='')}")

    def delete_artifact(self, repository: str, digest: str) -> None:
        if not DIGEST.match(digest):
            raise NotFound("deletes go by digest")
        self.api.request("DELETE", f"{repository_path(repository)}/artifacts/{quote(digest, safe=':')}")
