"""The lab's registries answer like real distribution 2.8 registries, with the seed in them."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

from tests.lab import common, registries, seed, token_issuer

SEED = seed.describe()
BEARER = re.compile(r'(\w+)="([^"]*)"')


@pytest.fixture(scope="session")
def lab(lab_registries: list[dict[str, object]]) -> list[dict[str, object]]:
    return lab_registries


class Client:
    """Just enough of a registry client: Basic, or the bearer-token dance, per scope."""

    def __init__(self, info: dict[str, object], *, password: str | None = None):
        self.info = info
        self.base = str(info["url"])
        self.session = requests.Session()
        self.session.trust_env = False
        self.user = info["user"]
        self.password = password if password is not None else info["password"]
        if info["auth"] == "basic":
            self.session.auth = (str(self.user), str(self.password))
        self.tokens: dict[str, str] = {}

    def request(self, method: str, path: str, **kwargs: object) -> requests.Response:
        url = urljoin(self.base, path)
        response = self.session.request(method, url, timeout=30, **kwargs)  # type: ignore[arg-type]
        challenge = response.headers.get("WWW-Authenticate", "")
        if response.status_code == 401 and challenge.startswith("Bearer "):
            token = self.token(dict(BEARER.findall(challenge)))
            headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {token}"}  # type: ignore[dict-item]
            response = self.session.request(method, url, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]
        return response

    def token(self, challenge: dict[str, str]) -> str:
        scope = challenge.get("scope", "")
        if scope not in self.tokens:
            answer = requests.get(
                challenge["realm"],
                params={"service": challenge["service"], "scope": scope},
                auth=(str(self.user), str(self.password)),
                timeout=30,
            )
            answer.raise_for_status()
            self.tokens[scope] = answer.json()["token"]
        return self.tokens[scope]

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def manifest(self, repo: str, reference: str, method: str = "GET") -> requests.Response:
        return self.request(method, f"/v2/{repo}/manifests/{reference}", headers={"Accept": seed.ACCEPT_ALL})


def by_name(lab: list[dict[str, object]], name: str) -> dict[str, object]:
    return next(info for info in lab if info["name"] == name)


@pytest.fixture(params=["anonymous", "basic", "token"])
def client(request: pytest.FixtureRequest, lab: list[dict[str, object]]) -> Client:
    return Client(by_name(lab, request.param))


def jwt_part(token: str, index: int) -> dict[str, object]:
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_up_returns_the_three_kinds(lab: list[dict[str, object]]) -> None:
    assert [(r["auth"], r["delete_enabled"]) for r in lab] == [
        ("none", True),
        ("basic", False),
        ("token", True),
    ]
    for info in lab:
        assert info["kind"] == "distribution"
        assert str(info["url"]).startswith("http://127.0.0.1:")
        assert (info["user"] is None) == (info["auth"] == "none")
        json.dumps(info)


def test_catalog_pages_through_every_repository(client: Client) -> None:
    names: list[str] = []
    path: str | None = "/v2/_catalog?n=50"
    pages = 0
    while path:
        response = client.get(path)
        assert response.status_code == 200, response.text
        names += response.json()["repositories"]
        pages += 1
        link = response.headers.get("Link")
        match = re.match(r'<([^>]+)>;\s*rel="next"', link or "")
        if match:
            assert match.group(1).startswith("/v2/_catalog?"), "distribution sends a relative Link"
        path = match.group(1) if match else None
    assert pages >= len(SEED.repositories) // 50
    # Sorted and complete; other suites' tests may have pushed repositories of their own.
    assert names == sorted(names) and set(SEED.repositories) <= set(names)
    assert {"library/photon", "team-a/app/api", "library/nginx", "team-b/tools"} <= set(names)


def test_many_tags_are_listed_unpaged(client: Client) -> None:
    response = client.get(f"/v2/{SEED.many_tags_repo}/tags/list")
    assert response.status_code == 200
    tags = response.json()["tags"]
    assert len(tags) > 1000
    assert set(tags) == set(SEED.tags[SEED.many_tags_repo])


@pytest.mark.parametrize("ref", ["oci_manifest", "docker_manifest", "multi_arch", "manifest_list"])
def test_manifest_media_type_and_digest(client: Client, ref: str) -> None:
    repo, tag = getattr(SEED, ref)
    expected = SEED.tags[repo][tag]
    response = client.manifest(repo, tag)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == expected.media_type
    assert response.headers["Docker-Content-Digest"] == expected.digest
    assert "sha256:" + hashlib.sha256(response.content).hexdigest() == expected.digest
    head = client.manifest(repo, tag, method="HEAD")
    assert head.headers["Docker-Content-Digest"] == expected.digest


def test_oci_manifest_without_the_oci_accept_type_is_not_found(client: Client) -> None:
    # The trap every client must know: ask for the OCI type or get a 404.
    repo, tag = SEED.oci_manifest
    response = client.request("GET", f"/v2/{repo}/manifests/{tag}", headers={"Accept": seed.DOCKER_MANIFEST})
    assert response.status_code == 404


def test_multi_platform_index_lists_amd64_and_arm64(client: Client) -> None:
    for repo, tag in (SEED.multi_arch, SEED.manifest_list):
        body = client.manifest(repo, tag).json()
        platforms = {
            f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"] for m in body["manifests"]
        }
        assert platforms == SEED.tags[repo][tag].platforms
        assert set(platforms) == {"linux/amd64", "linux/arm64"}
        child = client.manifest(repo, platforms["linux/arm64"])
        assert child.status_code == 200
        config = client.get(f"/v2/{repo}/blobs/{child.json()['config']['digest']}")
        assert config.json()["architecture"] == "arm64"


def test_two_tags_share_one_digest(client: Client) -> None:
    repo, tags = SEED.shared_digest
    digests = {client.manifest(repo, tag, method="HEAD").headers["Docker-Content-Digest"] for tag in tags}
    assert digests == {SEED.digest(repo, tags[0])}


def test_config_and_annotations_are_served(client: Client) -> None:
    repo, tag = SEED.oci_manifest
    manifest = client.manifest(repo, tag).json()
    assert manifest["annotations"]["org.opencontainers.image.version"] == "1.25"
    blob = client.get(f"/v2/{repo}/blobs/{manifest['config']['digest']}")
    assert blob.status_code == 200
    config = blob.json()
    assert config["created"] == SEED.tags[repo][tag].created
    assert config["config"]["ExposedPorts"] == {"80/tcp": {}, "443/tcp": {}}
    assert config["config"]["Entrypoint"] == ["/docker-entrypoint.sh"]
    assert config["config"]["Labels"]["maintainer"] == "lab@example.invalid"
    assert any(env.startswith("NGINX_VERSION=") for env in config["config"]["Env"])


@pytest.mark.parametrize("name", ["basic", "token"])
def test_wrong_credentials_are_refused(lab: list[dict[str, object]], name: str) -> None:
    info = by_name(lab, name)
    assert requests.get(f"{info['url']}/v2/", timeout=10).status_code == 401
    if name == "basic":
        response = requests.get(f"{info['url']}/v2/", auth=(str(info["user"]), "wrong"), timeout=10)
    else:
        response = requests.get(
            str(info["realm"]),
            params={"service": info["service"], "scope": "registry:catalog:*"},
            auth=(str(info["user"]), "wrong"),
            timeout=10,
        )
    assert response.status_code == 401


def test_token_flow_end_to_end(lab: list[dict[str, object]]) -> None:
    info = by_name(lab, "token")
    repo = "team-a/app/api"
    challenged = requests.get(f"{info['url']}/v2/{repo}/tags/list", timeout=10)
    assert challenged.status_code == 401
    challenge = dict(BEARER.findall(challenged.headers["WWW-Authenticate"]))
    assert challenge == {
        "realm": info["realm"],
        "service": info["service"],
        "scope": f"repository:{repo}:pull",
    }

    answer = requests.get(
        challenge["realm"],
        params={"service": challenge["service"], "scope": challenge["scope"]},
        auth=(str(info["user"]), str(info["password"])),
        timeout=10,
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] > 0 and body["issued_at"].endswith("Z")
    header, claims = jwt_part(body["token"], 0), jwt_part(body["token"], 1)
    assert header["alg"] == "RS256" and header["x5c"] and header["kid"]
    assert (
        claims["iss"] == info["issuer"] and claims["aud"] == info["service"] and claims["sub"] == info["user"]
    )
    assert claims["access"] == [{"type": "repository", "name": repo, "actions": ["pull"]}]
    assert {"exp", "nbf", "iat", "jti"} <= set(claims)

    granted = requests.get(
        f"{info['url']}/v2/{repo}/tags/list", headers={"Authorization": f"Bearer {body['token']}"}, timeout=10
    )
    assert granted.status_code == 200
    assert sorted(granted.json()["tags"]) == sorted(SEED.tags[repo])
    # A token for one repository opens no other.
    other = requests.get(
        f"{info['url']}/v2/library/photon/tags/list",
        headers={"Authorization": f"Bearer {body['token']}"},
        timeout=10,
    )
    assert other.status_code == 401


def test_token_with_only_a_kid_is_accepted(lab: list[dict[str, object]]) -> None:
    # Harbor's tokens carry a kid and no x5c: the registry finds the key in its bundle.
    info = by_name(lab, "token")
    signer = token_issuer.Signer(Path(str(info["rootcertbundle"])).parent)
    token, _ = signer.token(
        issuer=str(info["issuer"]),
        service=str(info["service"]),
        subject="harbor",
        access=[{"type": "registry", "name": "catalog", "actions": ["*"]}],
        x5c=False,
    )
    assert "x5c" not in jwt_part(token, 0)
    response = requests.get(
        f"{info['url']}/v2/_catalog?n=5", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert response.status_code == 200
    assert len(response.json()["repositories"]) == 5


def test_anonymous_token_grants_nothing(lab: list[dict[str, object]]) -> None:
    info = by_name(lab, "token")
    answer = requests.get(
        str(info["realm"]), params={"service": info["service"], "scope": "registry:catalog:*"}, timeout=10
    )
    assert answer.status_code == 200
    token = answer.json()["token"]
    assert jwt_part(token, 1)["access"] == [{"type": "registry", "name": "catalog", "actions": []}]
    refused = requests.get(
        f"{info['url']}/v2/_catalog", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert refused.status_code == 401
    assert "insufficient_scope" in refused.headers["WWW-Authenticate"]


def test_delete_by_digest(client: Client) -> None:
    repo = SEED.delete_repo
    digest = SEED.digest(repo, "a")
    by_tag = client.request("DELETE", f"/v2/{repo}/manifests/a")
    response = client.request("DELETE", f"/v2/{repo}/manifests/{digest}")
    if client.info["delete_enabled"]:
        assert by_tag.status_code == 400 and by_tag.json()["errors"][0]["code"] == "DIGEST_INVALID"
        assert response.status_code == 202, response.text
        assert client.manifest(repo, "a").status_code == 404
        assert client.manifest(repo, "b").status_code == 200
    else:
        assert response.status_code == 405
        assert response.json()["errors"][0]["code"] == "UNSUPPORTED"
        assert client.manifest(repo, "a").status_code == 200


def test_down_leaves_nothing_and_up_works_again(tmp_path: Path, lab: list[dict[str, object]]) -> None:
    workdir = tmp_path / "again"
    for _ in range(2):
        started = registries.up(workdir, repos=seed.DEFAULT_REPOS)
        pids = [int(p.read_text()) for p in (workdir / "pids").iterdir()]
        for info in started:
            assert requests.get(f"{info['url']}/v2/", timeout=10).status_code in (200, 401)
        registries.down(workdir)
        assert not workdir.exists()
        assert not any(common.running(pid) for pid in pids)
        for info in started:
            port = int(str(info["url"]).rsplit(":", 1)[1])
            assert not common.port_open("127.0.0.1", port)
        assert str(workdir) not in Path("/proc/self/mountinfo").read_text()
    registries.down(workdir)  # idempotent


def test_start_one_more_empty_registry_and_push_into_it(tmp_path: Path, lab: list[dict[str, object]]) -> None:
    # What the Harbor emulator does: its own registry, filled by a client through the HTTP API.
    workdir = tmp_path / "extra"
    try:
        info = registries.start_registry(workdir, "extra", auth="basic", delete=True, repos=None)
        auth = (str(info["user"]), str(info["password"]))
        catalog = f"{info['url']}/v2/_catalog"
        assert requests.get(catalog, auth=auth, timeout=10).json()["repositories"] == []
        small = seed.plan(repos=8, many_tags=3)
        seed.push(str(info["url"]), small, auth=auth, workers=2)
        assert requests.get(catalog, auth=auth, timeout=10).json()["repositories"] == sorted(small.repos)
    finally:
        registries.down(workdir)
    assert not workdir.exists()
