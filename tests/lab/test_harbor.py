"""The lab's Harbor emulator, held to Harbor's own swagger spec, against a real seeded registry.

Every route the emulator serves is called here and its answer validated against the
response schema the spec gives for that operation and status; the last test fails if
a served route was never validated.  Run alone:
``.venv/bin/python -m pytest -p no:cacheprovider -q tests/lab/test_harbor.py``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
import yaml

from tests.lab import harbor
from tests.lab.fixtures import start
from tests.lab.harbor_emulator import API, ROUTES

SPEC_PATH = Path(__file__).resolve().parent / "reference" / "harbor" / "swagger.yaml"
#: Where the spec disagrees with what Harbor really sends (go-swagger maps these loosely, so
#: Harbor never notices).  The emulator sends what Harbor sends; each entry says why.
SPEC_ERRATA = {
    # ExtraAttrs says every value is an object, but Harbor's image processor puts the strings
    # architecture, os, created and author there next to the config object.
    "ExtraAttrs": {"type": "object"},
}
VALIDATED: set[tuple[str, str]] = set()
TIMEOUT = 30


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    doc = yaml.safe_load(SPEC_PATH.read_text())
    definitions = copy.deepcopy(doc["definitions"])
    for schema in definitions.values():
        # Stricter than the spec: an emulator field the spec doesn't know is a typo to catch.
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
    definitions.update(copy.deepcopy(SPEC_ERRATA))
    doc["strict_definitions"] = definitions
    return doc


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    # Its own emulator, not the shared lab_harbor: these tests delete artifacts.
    workdir = tmp_path_factory.mktemp("harbor-deletes")
    yield start(lambda: harbor.up(workdir))
    harbor.down(workdir)


class Client:
    """Calls the emulator and checks each answer against the spec's schema for it."""

    def __init__(self, lab: dict[str, Any], spec: dict[str, Any], auth: tuple[str, str] | None) -> None:
        self.base = lab["url"]
        self.spec = spec
        self.session = requests.Session()
        self.session.auth = auth

    def call(
        self, method: str, spec_path: str, path: str, *, status: int = 200, **kwargs: Any
    ) -> requests.Response:
        resp = self.session.request(method, self.base + API + path, timeout=TIMEOUT, **kwargs)
        assert resp.status_code == status, (method, path, resp.status_code, resp.text[:500])
        assert resp.headers.get("X-Request-Id")
        self.validate(method, spec_path, resp)
        return resp

    def validate(self, method: str, spec_path: str, resp: requests.Response) -> None:
        operation = self.spec["paths"][spec_path][method.lower()]
        response = operation["responses"].get(str(resp.status_code))
        assert response is not None, f"{method} {spec_path} has no {resp.status_code} in the spec"
        if "$ref" in response:
            response = self.spec["responses"][response["$ref"].rsplit("/", 1)[1]]
        schema = response.get("schema")
        if schema is not None and method != "HEAD":
            produces = operation.get("produces", self.spec["produces"])
            if produces == ["text/plain"]:
                body: Any = resp.text
            else:
                assert resp.headers["Content-Type"].startswith("application/json")
                body = resp.json()
            document = {**schema, "definitions": self.spec["strict_definitions"]}
            jsonschema.Draft4Validator(document).validate(body)
        for header in response.get("headers", {}):
            if header in ("X-Total-Count",):
                assert int(resp.headers[header]) >= 0
        if resp.status_code < 300:
            VALIDATED.add((method, spec_path))

    def get(self, spec_path: str, path: str, **kwargs: Any) -> requests.Response:
        return self.call("GET", spec_path, path, **kwargs)


@pytest.fixture(scope="module")
def admin(lab: dict[str, Any], spec: dict[str, Any]) -> Client:
    return Client(lab, spec, (lab["admin_user"], lab["admin_password"]))


@pytest.fixture(scope="module")
def robot(lab: dict[str, Any], spec: dict[str, Any]) -> Client:
    return Client(lab, spec, (lab["user"], lab["password"]))


@pytest.fixture(scope="module")
def team_robot(lab: dict[str, Any], spec: dict[str, Any]) -> Client:
    return Client(lab, spec, (lab["team_robot_user"], lab["team_robot_password"]))


@pytest.fixture(scope="module")
def anonymous(lab: dict[str, Any], spec: dict[str, Any]) -> Client:
    return Client(lab, spec, None)


P = "/projects/{project_name}/repositories/{repository_name}"
ART = P + "/artifacts/{reference}"


def links(resp: requests.Response) -> dict[str, str]:
    out = {}
    for part in resp.headers.get("Link", "").split(" , "):
        if part:
            url, rel = part.split(">; rel=")
            out[rel.strip('"')] = url.lstrip("<")
    return out


# --- the route table and the spec ----------------------------------------------------------


def test_every_route_is_an_operation_of_the_spec(spec: dict[str, Any]) -> None:
    for route in ROUTES:
        assert route.method.lower() in spec["paths"].get(route.spec_path, {}), route


# --- system ---------------------------------------------------------------------------------


def test_ping_and_health(anonymous: Client) -> None:
    assert anonymous.get("/ping", "/ping").text == "Pong"
    health = anonymous.get("/health", "/health").json()
    assert health["status"] == "healthy"
    assert any(c["name"] == "registry" for c in health["components"])


def test_systeminfo_hides_urls_from_anonymous(anonymous: Client, admin: Client, lab: dict[str, Any]) -> None:
    assert "external_url" not in anonymous.get("/systeminfo", "/systeminfo").json()
    assert admin.get("/systeminfo", "/systeminfo").json()["external_url"] == lab["url"]


def test_current_user_verifies_credentials(
    admin: Client, robot: Client, anonymous: Client, lab: dict[str, Any], spec: dict[str, Any]
) -> None:
    me = admin.get("/users/current", "/users/current").json()
    assert me["username"] == "admin" and me["sysadmin_flag"] is True
    # Harbor answers 412 to a robot here: robots verify credentials on /projects instead.
    err = robot.get("/users/current", "/users/current", status=412).json()
    assert err["errors"][0]["code"] == "PRECONDITION"
    anonymous.get("/users/current", "/users/current", status=401)
    wrong = Client(lab, spec, (lab["user"], "not-the-password"))
    assert (
        wrong.get("/users/current", "/users/current", status=401).json()["errors"][0]["code"]
        == "UNAUTHORIZED"
    )
    wrong.get("/projects", "/projects", status=401)


def test_robot_name_with_dollar_authenticates(robot: Client, lab: dict[str, Any]) -> None:
    assert "$" in lab["user"]
    assert robot.get("/projects", "/projects").headers["X-Total-Count"] != "0"


def test_labels(admin: Client) -> None:
    labels = admin.get("/labels", "/labels", params={"scope": "g"}).json()
    assert {lab["name"] for lab in labels} >= {"production", "photon"}
    assert (
        admin.get("/labels", "/labels", params={"scope": "g", "q": "name=~phot"}).json()[0]["name"]
        == "photon"
    )
    admin.get("/labels", "/labels", params={"scope": "x"}, status=400)


# --- projects ---------------------------------------------------------------------------------


def test_projects_paging_headers(admin: Client) -> None:
    first = admin.get("/projects", "/projects", params={"page_size": 3})
    total = int(first.headers["X-Total-Count"])
    assert total > 6 and len(first.json()) == 3
    assert set(links(first)) == {"next"}
    assert links(first)["next"] == f"{API}/projects?page=2&page_size=3"
    second = admin.get("/projects", "/projects", params={"page_size": 3, "page": 2})
    assert links(second) == {
        "prev": f"{API}/projects?page=1&page_size=3",
        "next": f"{API}/projects?page=3&page_size=3",
    }
    last_page = (total + 2) // 3
    last = admin.get("/projects", "/projects", params={"page_size": 3, "page": last_page})
    assert set(links(last)) == {"prev"}
    names = [p["name"] for p in admin.get("/projects", "/projects", params={"page_size": 100}).json()]
    assert len(names) == total and names == sorted(names)
    default = admin.get("/projects", "/projects")
    assert len(default.json()) == 10


def test_page_size_above_spec_maximum_is_rejected(admin: Client, spec: dict[str, Any]) -> None:
    assert spec["parameters"]["pageSize"]["maximum"] == 100
    # go-swagger's parameter validation fails; Harbor answers it as 422 UNPROCESSABLE_ENTITY.
    err = admin.get("/projects", "/projects", params={"page_size": 101}, status=422).json()
    assert err["errors"][0]["code"] == "UNPROCESSABLE_ENTITY"
    admin.get(
        P + "/artifacts",
        "/projects/library/repositories/photon/artifacts",
        params={"page_size": 101},
        status=422,
    )
    admin.get("/projects", "/projects", params={"page_size": 100})


def test_projects_q_and_name_filters(admin: Client) -> None:
    fuzzy = admin.get("/projects", "/projects", params={"q": "name=~team"}).json()
    assert {p["name"] for p in fuzzy} == {"team-a", "team-b"}
    exact = admin.get("/projects", "/projects", params={"name": "library"}).json()
    assert [p["name"] for p in exact] == ["library"]
    assert exact[0]["project_id"] == 1 and exact[0]["metadata"]["public"] == "true"
    listed = admin.get("/projects", "/projects", params={"q": "name={team-a library}"}).json()
    assert {p["name"] for p in listed} == {"team-a", "library"}
    admin.get("/projects", "/projects", params={"q": "nonsense"}, status=400)


def test_anonymous_sees_public_projects_only(anonymous: Client) -> None:
    projects = anonymous.get("/projects", "/projects").json()
    assert [p["name"] for p in projects] == ["library"]
    anonymous.get("/projects/{project_name_or_id}", "/projects/library")
    anonymous.get("/projects/{project_name_or_id}", "/projects/team-a", status=401)
    anonymous.get(P + "/artifacts", "/projects/library/repositories/photon/artifacts")


def test_project_by_name_and_id(admin: Client) -> None:
    by_name = admin.get("/projects/{project_name_or_id}", "/projects/team-a").json()
    by_id = admin.get("/projects/{project_name_or_id}", f"/projects/{by_name['project_id']}").json()
    assert by_id == by_name and by_name["repo_count"] >= 1
    err = admin.get("/projects/{project_name_or_id}", "/projects/no-such-project", status=404).json()
    assert err["errors"][0]["code"] == "NOT_FOUND"
    summary = admin.get("/projects/{project_name_or_id}/summary", "/projects/team-a/summary").json()
    assert summary["repo_count"] == by_name["repo_count"]


def test_head_project(admin: Client) -> None:
    admin.call("HEAD", "/projects", "/projects", params={"project_name": "library"})
    admin.call("HEAD", "/projects", "/projects", params={"project_name": "nope"}, status=404)


def test_project_robot_is_limited_to_its_project(team_robot: Client) -> None:
    assert {p["name"] for p in team_robot.get("/projects", "/projects").json()} == {"library", "team-a"}
    team_robot.get("/projects/{project_name}/repositories", "/projects/team-a/repositories")
    err = team_robot.get("/projects/{project_name}/repositories", "/projects/team-b/repositories", status=403)
    assert err.json()["errors"][0]["code"] == "FORBIDDEN"
    team_robot.call("DELETE", ART, "/projects/team-a/repositories/app%252Fapi/artifacts/v1.2.0", status=403)


# --- repositories -------------------------------------------------------------------------------


def test_repositories_of_a_project(robot: Client) -> None:
    resp = robot.get("/projects/{project_name}/repositories", "/projects/library/repositories")
    names = [r["name"] for r in resp.json()]
    assert {"library/photon", "library/many-tags"} <= set(names)
    fuzzy = robot.get(
        "/projects/{project_name}/repositories", "/projects/library/repositories", params={"q": "name=~phot"}
    )
    assert [r["name"] for r in fuzzy.json()] == ["library/photon"]
    assert fuzzy.headers["X-Total-Count"] == "1"
    robot.get("/projects/{project_name}/repositories", "/projects/no-such/repositories", status=404)


def test_repository_names_are_encoded_twice(robot: Client) -> None:
    repo = robot.get(P, "/projects/team-a/repositories/app%252Fapi").json()
    assert repo["name"] == "team-a/app/api" and repo["artifact_count"] >= 1
    # Encoded once, the slash is a path separator again and no route matches (as in Harbor).
    robot.session.get(robot.base + API + "/projects/team-a/repositories/app%2Fapi", timeout=TIMEOUT)
    err = robot.get(P, "/projects/team-a/repositories/app%2Fapi", status=404).json()
    assert err["errors"][0]["code"] == "NOT_FOUND"
    robot.get(P, "/projects/team-a/repositories/nope", status=404)


def test_all_repositories(robot: Client) -> None:
    resp = robot.get("/repositories", "/repositories", params={"page_size": 100, "q": "name=~team-a/"})
    assert "team-a/app/api" in [r["name"] for r in resp.json()]


# --- artifacts ---------------------------------------------------------------------------------

PHOTON = "/projects/library/repositories/photon/artifacts"


def test_photon_index_and_shared_tags(robot: Client) -> None:
    arts = robot.get(P + "/artifacts", PHOTON).json()
    by_tags = {tuple(sorted(t["name"] for t in a["tags"])): a for a in arts}
    assert set(by_tags) == {("5.0", "latest"), ("4.0",), ("3.0",)}
    index = by_tags[("5.0", "latest")]
    assert index["manifest_media_type"] == "application/vnd.oci.image.index.v1+json"
    assert {r["platform"]["architecture"] for r in index["references"]} == {"amd64", "arm64"}
    plain = by_tags[("4.0",)]
    assert plain["extra_attrs"]["architecture"] == "amd64" and plain["extra_attrs"]["os"] == "linux"
    assert plain["size"] > 0 and plain["references"] == []


def test_artifact_options_on_and_off(robot: Client) -> None:
    bare = robot.get(P + "/artifacts", PHOTON, params={"with_tag": "false"}).json()
    assert all("tags" not in a and "labels" not in a and "scan_overview" not in a for a in bare)
    assert all("accessories" not in a for a in bare)
    full = robot.get(
        P + "/artifacts",
        PHOTON,
        params={
            "with_label": "true",
            "with_scan_overview": "true",
            "with_accessory": "true",
            "page_size": 100,
        },
    ).json()
    assert all("tags" in a and "labels" in a and "accessories" in a for a in full)
    many = robot.get(
        P + "/artifacts",
        "/projects/library/repositories/many-tags/artifacts",
        params={
            "with_scan_overview": "true",
            "with_accessory": "true",
            "with_label": "true",
            "page_size": 100,
        },
    ).json()
    overviews = [a["scan_overview"] for a in many if "scan_overview" in a]
    assert 0 < len(overviews) < len(many), "some artifacts scanned, some not"
    report = next(iter(overviews[0].values()))
    assert report["summary"]["total"] == sum(report["summary"]["summary"].values())
    assert {acc["type"] for a in many for acc in a["accessories"]} == {"signature.cosign", "harbor.sbom"}
    assert any(a["labels"] for a in many)


def test_artifact_q_filters(robot: Client) -> None:
    tagged = robot.get(P + "/artifacts", PHOTON, params={"q": "tags=5.0"}).json()
    assert [sorted(t["name"] for t in a["tags"]) for a in tagged] == [["5.0", "latest"]]
    fuzzy = robot.get(P + "/artifacts", PHOTON, params={"q": "tags=~.0"}).json()
    assert len(fuzzy) == 3
    assert robot.get(P + "/artifacts", PHOTON, params={"q": "tags=nil"}).json() == []
    labelled = robot.get(
        P + "/artifacts",
        "/projects/library/repositories/many-tags/artifacts",
        params={"q": "labels=(1 2)", "with_label": "true", "page_size": 100},
    ).json()
    assert labelled and all({1, 2} <= {lab["id"] for lab in a["labels"]} for a in labelled)


def test_many_tags_paging(robot: Client) -> None:
    path = "/projects/library/repositories/many-tags/artifacts"
    started = time.monotonic()
    first = robot.get(P + "/artifacts", path, params={"page_size": 100})
    assert int(first.headers["X-Total-Count"]) > 1000
    assert links(first)["next"] == f"{API}{path}?page=2&page_size=100"
    warm = time.monotonic()
    second = robot.get(P + "/artifacts", path, params={"page_size": 100, "page": 2})
    print(f"many-tags page: cold={warm - started:.2f}s warm={time.monotonic() - warm:.3f}s")
    assert not {a["digest"] for a in first.json()} & {a["digest"] for a in second.json()}


def test_get_artifact_by_tag_and_digest(robot: Client) -> None:
    by_tag = robot.get(ART, f"{PHOTON}/latest", params={"with_scan_overview": "true"}).json()
    by_digest = robot.get(ART, f"{PHOTON}/{by_tag['digest']}", params={"with_scan_overview": "true"}).json()
    assert by_tag == by_digest
    err = robot.get(ART, f"{PHOTON}/no-such-tag", status=404).json()
    assert err["errors"][0]["code"] == "NOT_FOUND"
    tags = robot.get(ART + "/tags", f"{PHOTON}/latest/tags")
    assert (
        sorted(t["name"] for t in tags.json()) == ["5.0", "latest"] and tags.headers["X-Total-Count"] == "2"
    )
    accessories = robot.get(ART + "/accessories", f"{PHOTON}/latest/accessories").json()
    assert all(a["subject_artifact_digest"] == by_tag["digest"] for a in accessories)


# --- /v2/ and the token flow --------------------------------------------------------------------


def _token(lab: dict[str, Any], auth: tuple[str, str] | None, scope: str) -> str:
    resp = requests.get(
        f"{lab['url']}/service/token",
        params={"service": "harbor-registry", "scope": scope},
        auth=auth,
        timeout=9,
    )
    resp.raise_for_status()
    return str(resp.json()["token"])


def _v2_tags(lab: dict[str, Any], repo: str) -> list[str]:
    token = _token(lab, (lab["user"], lab["password"]), f"repository:{repo}:pull")
    resp = requests.get(
        f"{lab['url']}/v2/{repo}/tags/list", headers={"Authorization": f"Bearer {token}"}, timeout=9
    )
    resp.raise_for_status()
    return sorted(resp.json().get("tags") or [])


def test_v2_token_flow(lab: dict[str, Any]) -> None:
    challenge = requests.get(f"{lab['url']}/v2/", timeout=9)
    assert challenge.status_code == 401
    assert challenge.headers["WWW-Authenticate"].startswith(f'Bearer realm="{lab["url"]}/service/token"')
    assert _v2_tags(lab, "library/photon") == ["3.0", "4.0", "5.0", "latest"]
    team = (lab["team_robot_user"], lab["team_robot_password"])
    denied = _token(lab, team, "repository:team-b/tools:pull")
    resp = requests.get(
        f"{lab['url']}/v2/team-b/tools/tags/list", headers={"Authorization": f"Bearer {denied}"}, timeout=9
    )
    assert resp.status_code == 401
    basic = requests.get(f"{lab['url']}/v2/team-a/app/api/tags/list", auth=team, timeout=9)
    assert basic.status_code == 200


# --- deletes, reflected in /v2/ (these change the backend: keep them last) -------------------


def test_delete_tag_keeps_the_other_tag_on_the_digest(robot: Client, lab: dict[str, Any]) -> None:
    digest = robot.get(ART, f"{PHOTON}/latest").json()["digest"]
    robot.call("DELETE", ART + "/tags/{tag_name}", f"{PHOTON}/latest/tags/latest")
    assert _v2_tags(lab, "library/photon") == ["3.0", "4.0", "5.0"]
    art = robot.get(ART, f"{PHOTON}/{digest}").json()
    assert [t["name"] for t in art["tags"]] == ["5.0"]
    robot.call("DELETE", ART + "/tags/{tag_name}", f"{PHOTON}/5.0/tags/latest", status=404)


def test_delete_last_tag_leaves_an_untagged_artifact(robot: Client, lab: dict[str, Any]) -> None:
    base = "/projects/scratch/repositories/delete-me/artifacts"
    digest = robot.get(ART, f"{base}/a").json()["digest"]
    robot.call("DELETE", ART + "/tags/{tag_name}", f"{base}/a/tags/a")
    assert _v2_tags(lab, "scratch/delete-me") == ["b"]
    untagged = robot.get(P + "/artifacts", base, params={"q": "tags=nil"}).json()
    assert [a["digest"] for a in untagged] == [digest]
    robot.call("DELETE", ART, f"{base}/{digest}")
    robot.get(ART, f"{base}/{digest}", status=404)


def test_delete_through_v2_shows_in_the_api(robot: Client, lab: dict[str, Any]) -> None:
    base = "/projects/scratch/repositories/delete-me/artifacts"
    digest = robot.get(ART, f"{base}/b").json()["digest"]
    token = _token(lab, (lab["user"], lab["password"]), "repository:scratch/delete-me:delete")
    resp = requests.delete(
        f"{lab['url']}/v2/scratch/delete-me/manifests/{digest}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=9,
    )
    assert resp.status_code == 202
    assert robot.get(P + "/artifacts", base).json() == []


def test_delete_repository(robot: Client, lab: dict[str, Any]) -> None:
    robot.call("DELETE", P, "/projects/team-b/repositories/tools")
    robot.get(P, "/projects/team-b/repositories/tools", status=404)
    listed = robot.get("/projects/{project_name}/repositories", "/projects/team-b/repositories").json()
    assert "team-b/tools" not in [r["name"] for r in listed]
    assert _v2_tags(lab, "team-b/tools") == []


def test_delete_artifact_removes_it_from_v2(robot: Client, lab: dict[str, Any]) -> None:
    robot.call("DELETE", ART, f"{PHOTON}/4.0")
    assert _v2_tags(lab, "library/photon") == ["3.0", "5.0"]
    robot.call("DELETE", ART, f"{PHOTON}/4.0", status=404)


# --- keeps the route table honest: must stay the last test ---------------------------------------


def test_every_served_route_was_validated_against_the_spec(lab: dict[str, Any]) -> None:
    served = {(route.method, route.spec_path) for route in ROUTES}
    assert served - VALIDATED == set(), "routes served without a spec-validated success response"
