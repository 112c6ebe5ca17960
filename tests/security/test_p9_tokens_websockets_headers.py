"""Issue 12, point 9: API tokens expire and carry a scope; websockets re-check access on
every event and compare the Origin's scheme, host and port; no secret in a repr; a CSP
with no inline script, and HSTS when cookies are secure."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import importlib
import os
import re
import subprocess
import sys

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from hosts.models import Host
from portal import api_auth
from portal.models import ApiToken, AuditEntry, Project, Role
from tests.conftest import REPO
from tests.threads import orm_in_thread

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(make_user):  # type: ignore[no-untyped-def]
    web, db = Project.objects.create(name="web"), Project.objects.create(name="db")
    prov = make_user("prov", project=web, role=Role.PROVISIONER)
    prov.memberships.create(project=db, role=Role.PROVISIONER)
    hosts = {
        name: Host.objects.create(
            project=project, name=name, docker_url=f"tcp://192.0.2.{n}:2376", enabled=False
        )
        for n, (name, project) in enumerate([("web-1", web), ("db-1", db)], start=1)
    }
    return {"web": web, "db": db, "prov": prov, "admin": make_user("admin", admin=True), **hosts}


def api(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def host_names(response) -> set[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.content
    return {row["name"] for row in response.json()["results"]}


# --- API tokens ----------------------------------------------------------------------------


def test_an_expired_token_is_refused_with_401(world) -> None:
    record, token = api_auth.issue(world["prov"], "old script")
    assert api(token).get("/api/hosts/").status_code == 200
    ApiToken.objects.filter(pk=record.pk).update(expires=timezone.now() - datetime.timedelta(seconds=1))
    response = api(token).get("/api/hosts/")
    assert response.status_code == 401 and response.json()["detail"] == "token expired"


def test_a_read_only_token_cannot_post(world) -> None:
    _, token = api_auth.issue(world["prov"], "dashboard", read_only=True)
    host = world["web-1"]
    assert host_names(api(token).get("/api/hosts/")) == {"web-1", "db-1"}
    before = AuditEntry.objects.count()
    response = api(token).post(f"/api/hosts/{host.pk}/containers/{'a' * 12}/restart/")
    assert response.status_code == 403
    assert "read-only" in response.json()["detail"]
    assert AuditEntry.objects.count() == before
    # The same call with a read-write token gets past the gate (and meets the host's state).
    _, writer = api_auth.issue(world["prov"], "ops")
    assert api(writer).post(f"/api/hosts/{host.pk}/containers/{'a' * 12}/restart/").status_code == 409


def test_a_project_token_sees_and_acts_only_within_its_project(world) -> None:
    _, token = api_auth.issue(world["prov"], "web only", project=world["web"])
    client = api(token)
    assert host_names(client.get("/api/hosts/")) == {"web-1"}
    assert client.get(f"/api/hosts/{world['db-1'].pk}/").status_code == 404
    assert client.get(f"/api/hosts/?project={world['db'].pk}").json()["results"] == []
    assert {row["name"] for row in client.get("/api/projects/").json()["results"]} == {"web"}
    response = client.post(f"/api/hosts/{world['db-1'].pk}/containers/{'a' * 12}/restart/")
    assert response.status_code == 404


def test_a_project_token_reads_no_audit_entry_of_another_project(world) -> None:
    # The token's user acted in both projects; the web token shows only what happened in web.
    for project in (world["web"], world["db"]):
        AuditEntry.objects.create(action="host.update", actor=world["prov"], project=project,
                                  object_repr=f"in {project.name}")  # fmt: skip
    _, token = api_auth.issue(world["prov"], "web only", project=world["web"])
    response = api(token).get("/api/audit/")
    assert response.status_code == 200, response.content
    assert {row["object"] for row in response.json()["results"]} == {"in web"}
    _, everywhere = api_auth.issue(world["prov"], "all mine")
    seen = {row["object"] for row in api(everywhere).get("/api/audit/").json()["results"]}
    assert seen == {"in web", "in db"}


def test_an_admins_project_token_is_no_admin(world) -> None:
    _, token = api_auth.issue(world["admin"], "web only", project=world["web"])
    client = api(token)
    assert host_names(client.get("/api/hosts/")) == {"web-1"}
    assert client.get("/api/vcenters/").status_code == 403
    assert {row["name"] for row in client.get("/api/projects/").json()["results"]} == {"web"}


def test_the_token_form_takes_an_expiry_and_a_scope_within_limits(client, world) -> None:
    client.force_login(world["prov"])
    response = client.post(
        "/account/tokens/", {"name": "ci", "days": 30, "read_only": "1", "project": world["db"].pk}
    )
    assert response.status_code == 200 and response.context["new_token"]
    record = ApiToken.objects.get(name="ci")
    assert record.read_only and record.project == world["db"]
    assert abs(record.expires - timezone.now() - datetime.timedelta(days=30)) < datetime.timedelta(minutes=1)
    assert b"read-only, db" in response.content
    # More than a year, or a project the user is not in: refused, nothing made.
    stranger = Project.objects.create(name="stranger")
    for data in ({"days": 400, "read_only": "0"}, {"days": 30, "read_only": "0", "project": stranger.pk}):
        response = client.post("/account/tokens/", {"name": "bad", **data})
        assert response.status_code == 400
    assert not ApiToken.objects.filter(name="bad").exists()


# --- Websockets --------------------------------------------------------------------------


def _socket(cookie: str, origin: str = "http://127.0.0.1:8000", host: str = "127.0.0.1:8000"):  # type: ignore[no-untyped-def]
    from channels.testing import WebsocketCommunicator

    from portal.asgi import application

    headers = [
        (b"host", host.encode()),
        (b"origin", origin.encode()),
        (b"cookie", f"sessionid={cookie}".encode()),
    ]
    return WebsocketCommunicator(application, "/ws/live/", headers=headers)


@pytest.mark.django_db(transaction=True)
def test_a_socket_closes_when_the_membership_goes(client, make_user) -> None:
    from portal.live import apublish
    from portal.models import Membership
    from tests.conftest import session_cookie

    web = Project.objects.create(name="web")
    member = make_user("member", project=web, role=Role.VIEWER)
    cookie = session_cookie(client, member)
    topic = f"project:{web.pk}:hosts"

    async def scenario() -> tuple[dict, dict]:  # type: ignore[type-arg]
        ws = _socket(cookie)
        try:
            assert (await ws.connect(timeout=10))[0]
            await ws.send_json_to({"subscribe": [topic]})
            assert await ws.receive_json_from(timeout=5) == {"subscribed": [topic], "refused": []}
            await apublish(topic, html="<tr>before</tr>")
            before = await ws.receive_json_from(timeout=5)
            await orm_in_thread(Membership.objects.filter(user=member, project=web).delete)
            await apublish(topic, html="<tr>after: secret</tr>")
            # Nothing of the event: the next (and last) thing on the socket is its close.
            return before, await ws.receive_output(timeout=5)
        finally:
            await ws.disconnect()  # in this loop (tests lore: a channels communicator must)

    before, after = asyncio.run(scenario())
    assert before["html"] == "<tr>before</tr>"
    assert after["type"] == "websocket.close" and after.get("code") == 4403


@pytest.mark.django_db(transaction=True)
def test_a_socket_keeps_what_is_still_allowed_and_closes_when_the_account_is_disabled(
    client, make_user
) -> None:
    from portal.live import apublish
    from portal.models import Membership
    from tests.conftest import session_cookie

    web, db = Project.objects.create(name="web"), Project.objects.create(name="db")
    member = make_user("member", project=web, role=Role.VIEWER)
    member.memberships.create(project=db, role=Role.VIEWER)
    cookie = session_cookie(client, member)
    topic = f"project:{web.pk}:hosts"

    async def scenario() -> tuple[dict, dict]:  # type: ignore[type-arg]
        ws = _socket(cookie)
        try:
            assert (await ws.connect(timeout=10))[0]
            await ws.send_json_to({"subscribe": [topic]})
            assert await ws.receive_json_from(timeout=5) == {"subscribed": [topic], "refused": []}
            # Another project's membership goes: this socket's subscription still holds.
            await orm_in_thread(Membership.objects.filter(user=member, project=db).delete)
            await apublish(topic, html="<tr>still mine</tr>")
            kept = await ws.receive_json_from(timeout=5)
            member.is_active = False
            await orm_in_thread(member.save, update_fields=["is_active"])
            await apublish(topic, html="<tr>after: secret</tr>")
            return kept, await ws.receive_output(timeout=5)
        finally:
            await ws.disconnect()

    kept, after = asyncio.run(scenario())
    assert kept["html"] == "<tr>still mine</tr>"
    assert after["type"] == "websocket.close" and after.get("code") == 4403


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("origin", "accepted"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://127.0.0.1:9999", False),  # the same name, another port: another site
        ("http://127.0.0.1", False),
        ("https://127.0.0.1:8000", False),  # another scheme
        ("http://evil.example:8000", False),
        ("null", False),
    ],
)
def test_the_origin_must_match_scheme_host_and_port(client, make_user, origin: str, accepted: bool) -> None:
    from tests.conftest import session_cookie

    cookie = session_cookie(client, make_user("alice"))

    async def connects() -> bool:
        ws = _socket(cookie, origin=origin)
        connected, _ = await ws.connect(timeout=10)
        await ws.disconnect()
        return bool(connected)

    assert asyncio.run(connects()) is accepted


@pytest.mark.django_db(transaction=True)
@override_settings(PORTAL_BASE_URL="https://portal.example.com", ALLOWED_HOSTS=["portal.example.com"])
def test_behind_the_proxy_the_public_origin_is_allowed_and_only_it(client, make_user) -> None:
    from tests.conftest import session_cookie

    cookie = session_cookie(client, make_user("alice"))

    async def connects(origin: str) -> bool:
        # The proxy forwards the public Host; daphne itself speaks plain ws.
        ws = _socket(cookie, origin=origin, host="portal.example.com")
        connected, _ = await ws.connect(timeout=10)
        await ws.disconnect()
        return bool(connected)

    assert asyncio.run(connects("https://portal.example.com"))
    assert not asyncio.run(connects("https://portal.example.com:8443"))


@pytest.mark.django_db(transaction=True)
def test_a_real_daphne_refuses_an_origin_on_another_port(daphne_factory, client, make_user) -> None:
    import websockets

    from tests.conftest import session_cookie

    server = daphne_factory()
    cookie = session_cookie(client, make_user("alice"))
    port = int(server.url.rsplit(":", 1)[1])

    async def status(origin: str) -> int:
        headers = {"Origin": origin, "Cookie": f"sessionid={cookie}"}
        try:
            async with websockets.connect(server.ws_url, additional_headers=headers, open_timeout=10):
                return 101
        except websockets.InvalidStatus as exc:
            return exc.response.status_code

    assert asyncio.run(status(server.url)) == 101
    assert asyncio.run(status(f"http://127.0.0.1:{port + 1}")) == 403


# --- Secrets out of every repr -----------------------------------------------------------

SENTINEL = "s3cr3t-Sentinel-value"
#: Field names that sound secret and are not: public keys, a paging cursor, a counter.
NOT_SECRET = {
    "ssh_public_key",
    "ssh_host_key",
    "host_key",
    "token_fetches",
    "hosts.vsphere.client.collector.Page.token",
    "registry.images.Image.author",
    "hosts.changes.errors.Problem.key",  # the name of a setting (e.g. "Banner"), not a key
    "portal.expiry.Expiring.key",  # which certificate ("hosts.host:3:client_cert"), not a key
}
SECRET_NAME = re.compile(r"password|private|secret|token|(^|_)key($|_)|credential", re.IGNORECASE)


def test_a_transports_repr_hides_the_registry_password() -> None:
    from registry.clients.http import Transport

    transport = Transport("https://registry.example", username="robot", password=SENTINEL)
    assert SENTINEL not in repr(transport) and SENTINEL not in str(transport)
    assert "robot" in repr(transport)  # the rest is still there to debug with


def test_no_dataclass_shows_a_secret_in_its_repr() -> None:
    """Every dataclass of the portal's own code: a field named like a secret is kept out
    of repr (so a new one cannot slip in), and the ones known today really hide a value."""
    found: list[str] = []
    for module_name in _portal_modules():
        module = importlib.import_module(module_name)
        for obj in vars(module).values():
            if not (
                dataclasses.is_dataclass(obj) and isinstance(obj, type) and obj.__module__ == module_name
            ):
                continue
            for f in dataclasses.fields(obj):
                qualified = f"{module_name}.{obj.__name__}.{f.name}"
                if SECRET_NAME.search(f.name) and f.name not in NOT_SECRET and qualified not in NOT_SECRET:
                    found.append(qualified)
                    assert not f.repr, f"{qualified} is shown in repr()"
    assert {"hosts.ca.Issued.key", "registry.clients.http.Transport.password"} <= set(found)

    from hosts.ca import Issued
    from hosts.provision.cloud_config import HostSeed

    seed = HostSeed("i", "h", "ssh-ed25519 A", "ca", "cert", SENTINEL, f"https://p/enroll/{SENTINEL}/")
    assert SENTINEL not in repr(seed)
    assert SENTINEL not in repr(Issued(cert="c", key=SENTINEL, ca="a"))


def _portal_modules() -> list[str]:
    names = []
    for package in ("portal", "hosts", "registry"):
        root = REPO / package
        for path in sorted(root.rglob("*.py")):
            relative = path.relative_to(REPO).with_suffix("")
            if "migrations" in relative.parts or relative.name in {"asgi", "wsgi", "celery"}:
                continue
            names.append(".".join(relative.parts).removesuffix(".__init__"))
    return names


# --- CSP, HSTS, check --deploy -----------------------------------------------------------

PRODUCTION = {
    "PORTAL_SECURE_COOKIES": "1",
    "PORTAL_ALLOWED_HOSTS": "portal.example.com",
    "PORTAL_CSRF_TRUSTED_ORIGINS": "https://portal.example.com",
    "PORTAL_BASE_URL": "https://portal.example.com",
    "PORTAL_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO",
    "DATABASE_URL": "postgres://portal@db.invalid:5432/portal",
    "REDIS_URL": "redis://redis.invalid:6379/0",
}


def _production_env(tmp_path, **extra: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    # Only the README's settings: none of this test run's own (PORTAL_DEBUG, the e2e
    # tests' DJANGO_ALLOW_ASYNC_UNSAFE, a test database) may leak in.
    ours = ("PORTAL_", "DJANGO_", "DATABASE_URL", "REDIS_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    keys = {k: os.environ[k] for k in ("PORTAL_SECRET_KEY", "PORTAL_ENCRYPTION_KEY")}
    return {**env, **keys, **PRODUCTION, "PORTAL_VAR_DIR": str(tmp_path), **extra}


def _directives(header: str) -> dict[str, list[str]]:
    parts = (part.strip().split() for part in header.split(";") if part.strip())
    return {words[0]: words[1:] for words in parts}


def test_pages_carry_a_csp_with_no_inline_script(client, world) -> None:
    client.force_login(world["prov"])
    for url in ("/", "/hosts/", "/account/tokens/", "/accounts/login/", "/api/docs/"):
        response = client.get(url, follow=True)
        assert response.status_code == 200, url
        policy = _directives(response["Content-Security-Policy"])
        assert policy["script-src"] == ["'self'"], (url, policy)
        # Swagger UI styles itself inline (on its page alone); scripts never are.
        assert policy["style-src"] == (["'self'", "'unsafe-inline'"] if url == "/api/docs/" else ["'self'"])
        assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
        body = response.content.decode()
        # Every <script> loads a file (or is data: application/json); no on*= handler anywhere.
        for tag in re.findall(r"<script\b[^>]*>", body):
            assert "src=" in tag or 'type="application/json"' in tag, (url, tag)
        assert not re.search(r"\son[a-z]+\s*=", body), url


def test_no_template_has_an_inline_script_or_handler() -> None:
    offenders = []
    for path in sorted((REPO / "templates").rglob("*.html")):
        text = path.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            if "src=" not in tag:
                offenders.append(f"{path.name}: {tag}")
        offenders += [f"{path.name}: {m}" for m in re.findall(r"\son[a-z]+\s*=\s*[\"']", text)]
        offenders += [f"{path.name}: {m}" for m in re.findall(r"\sstyle\s*=\s*[\"']", text)]
    assert offenders == []


def test_check_deploy_is_clean_with_the_readmes_production_settings(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=_production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout + done.stderr
    # And the check has teeth: without secure cookies (so no HSTS) it is not clean.
    loose = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=_production_env(tmp_path, PORTAL_SECURE_COOKIES=""),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loose.returncode != 0 and "security.W004" in loose.stdout + loose.stderr


HEADERS_SCRIPT = """
import django; django.setup()
from django.test import Client
client = Client(HTTP_HOST="portal.example.com")
https = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
plain = client.get("/accounts/login/")
print(https.status_code, https.get("Strict-Transport-Security", ""))
print(plain.status_code, plain.get("Location", ""))
"""


def test_hsts_and_the_https_redirect_when_cookies_are_secure(tmp_path) -> None:
    env = _production_env(tmp_path, DJANGO_SETTINGS_MODULE="portal.settings")
    del env["DATABASE_URL"], env["REDIS_URL"]  # the sign-in page needs no service
    done = subprocess.run(
        [sys.executable, "-c", HEADERS_SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    https, plain = done.stdout.strip().splitlines()[-2:]
    assert https == "200 max-age=31536000; includeSubDomains; preload"
    assert plain == "301 https://portal.example.com/accounts/login/"
