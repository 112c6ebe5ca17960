"""Issue 12, point 6 ("No brakes"): a password guesser is locked out, anonymous floods of
enroll/kickstart posts and wrong API tokens are throttled and cost one event row, and
/healthz does not run a real check per caller.

Each test comes from an address of its own: throttles are counted in the cache, which
outlives a test's database transaction."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import AsyncClient, Client
from django.urls import reverse
from rest_framework.test import APIClient

from hosts.models import ProvisionedVm, ProvisionQuota
from hosts.provision import kickstart as provision_kickstart
from portal import api_auth
from portal.models import ApiToken, AuditEntry, Event, Project, Role
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOCKOUT = "Too many failed sign-ins; try again in 15 minutes."


def address() -> str:
    return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{1 + secrets.randbelow(250)}"


def sign_in(client: Client, username: str, password: str, addr: str):  # type: ignore[no-untyped-def]
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=addr)


# --- Sign-in lockout ------------------------------------------------------------


def test_twenty_wrong_passwords_then_the_right_one_is_still_refused(client, make_user) -> None:
    make_user("alice")
    addr = address()
    statuses = [sign_in(client, "alice", f"guess-{n}", addr).status_code for n in range(20)]
    # Five real failures (the fifth locks), then every attempt is refused unread.
    assert statuses == [200] * 4 + [429] * 16
    response = sign_in(client, "alice", PASSWORD, addr)
    assert response.status_code == 429
    assert LOCKOUT in response.content.decode()
    assert 'value="alice"' in response.content.decode()  # the page keeps the name typed
    assert "_auth_user_id" not in client.session
    # The trail holds the five failures and one lockout, not a row per refused guess,
    # and the refusals during the cool-off did not grow the attempt record.
    assert AuditEntry.objects.filter(action="auth.login_failed").count() == 5
    assert AuditEntry.objects.filter(action="auth.locked_out", actor_name="alice").count() == 1
    attempt = AccessAttempt.objects.get(username="alice")
    assert attempt.failures_since_start == 5
    assert "guess-" not in attempt.post_data and "password=****" in attempt.post_data


def test_the_lockout_is_one_name_from_one_address(client, make_user) -> None:
    make_user("alice")
    make_user("bob")
    addr = address()
    for n in range(5):
        sign_in(client, "alice", f"guess-{n}", addr)
    assert sign_in(client, "alice", PASSWORD, addr).status_code == 429
    # Bob from the same address, and Alice from her own, still sign in.
    assert sign_in(Client(), "bob", PASSWORD, addr).status_code == 302
    assert sign_in(Client(), "alice", PASSWORD, address()).status_code == 302


def test_the_lockout_ends_after_the_cool_off(client, make_user) -> None:
    make_user("alice")
    addr = address()
    for n in range(5):
        sign_in(client, "alice", f"guess-{n}", addr)
    assert sign_in(client, "alice", PASSWORD, addr).status_code == 429
    # The cool-off has passed (moved back, rather than waited for).
    attempt = AccessAttempt.objects.get(username="alice")
    AccessAttempt.objects.filter(pk=attempt.pk).update(
        attempt_time=attempt.attempt_time - timedelta(minutes=16)
    )
    assert sign_in(client, "alice", PASSWORD, addr).status_code == 302


def test_a_locked_out_user_s_api_token_still_works(client, make_user) -> None:
    alice = make_user("alice")
    _, token = api_auth.issue(alice, "script")
    addr = address()
    for n in range(6):
        sign_in(client, "alice", f"guess-{n}", addr)
    assert sign_in(client, "alice", PASSWORD, addr).status_code == 429
    api = APIClient(REMOTE_ADDR=addr)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/api/projects/").status_code == 200


def test_the_admin_sign_in_is_locked_out_too(make_user) -> None:
    make_user("root", admin=True)
    addr, browser = address(), Client()
    for n in range(5):
        browser.post("/admin/login/", {"username": "root", "password": f"guess-{n}"}, REMOTE_ADDR=addr)
    response = browser.post("/admin/login/", {"username": "root", "password": PASSWORD}, REMOTE_ADDR=addr)
    assert response.status_code == 429 and LOCKOUT in response.content.decode()
    assert "_auth_user_id" not in browser.session


# --- Anonymous enroll and kickstart ----------------------------------------------


def test_fifty_enroll_posts_with_garbage_tokens_cost_one_event_and_then_429() -> None:
    addr, anonymous = address(), Client()
    statuses = []
    for n in range(50):
        url = reverse("hosts:provision_enroll", args=[f"garbage-{n}"])
        statuses.append(anonymous.post(url, {"instance_id": "x"}, REMOTE_ADDR=addr).status_code)
    assert statuses == [403] * 20 + [429] * 30
    refused = Event.objects.filter(message__contains=f"refused from {addr}")
    assert refused.count() == 1
    assert refused.get().message.startswith("20 times since ")
    last = anonymous.post(reverse("hosts:provision_enroll", args=["garbage"]), {}, REMOTE_ADDR=addr)
    assert last.status_code == 429 and int(last["Retry-After"]) > 0
    assert "Too many requests from this address" in last.json()["error"]
    # Another address is not held back by this one's flood.
    other = anonymous.post(reverse("hosts:provision_enroll", args=["garbage"]), {}, REMOTE_ADDR=address())
    assert other.status_code == 403


def test_refusals_after_their_event_is_pruned_gather_into_one_new_event() -> None:
    addr, anonymous = address(), Client()
    url = reverse("hosts:provision_enroll", args=["garbage"])
    for _ in range(3):
        anonymous.post(url, {}, REMOTE_ADDR=addr)
    refused = Event.objects.filter(message__contains=f"refused from {addr}")
    assert refused.count() == 1
    refused.delete()  # as retention would
    for _ in range(3):
        anonymous.post(url, {}, REMOTE_ADDR=addr)
    assert refused.count() == 1 and refused.get().message.startswith("3 times since ")


@pytest.fixture
def kickstarted(make_user) -> tuple[ProvisionedVm, str]:
    project = Project.objects.create(name="metal")
    ProvisionQuota.objects.create(project=project, max_vms=5, max_cpus=10, max_memory_mb=10240)
    prov = make_user("prov", project=project, role=Role.PROVISIONER)
    return provision_kickstart.new_kickstart(project, "metal-1", prov)


def test_a_replayed_kickstart_url_costs_one_event_and_a_flood_gets_429(kickstarted) -> None:
    pvm, token = kickstarted
    addr, installer = address(), Client()
    url = reverse("hosts:provision_kickstart", args=[token])
    statuses = [installer.get(url, REMOTE_ADDR=addr).status_code for _ in range(40)]
    assert statuses == [200] + [403] * 19 + [429] * 20
    replays = Event.objects.filter(object_type="hosts.provisionedvm", object_id=str(pvm.pk))
    assert replays.count() == 1 and replays.get().message.startswith("19 times since ")
    assert "already used" in replays.get().message


# --- API tokens ----------------------------------------------------------------


def test_wrong_api_tokens_are_throttled_even_for_the_right_one_afterwards(make_user) -> None:
    alice = make_user("alice")
    _, token = api_auth.issue(alice, "script")
    addr = address()
    guesser = APIClient(REMOTE_ADDR=addr)
    statuses = []
    for n in range(30):
        guesser.credentials(HTTP_AUTHORIZATION=f"Bearer pp_{n}{secrets.token_urlsafe(8)}")
        statuses.append(guesser.get("/api/projects/").status_code)
    assert statuses == [401] * 20 + [429] * 10
    guesser.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    refused = guesser.get("/api/projects/")
    assert refused.status_code == 429 and "Too many wrong tokens" in refused.json()["detail"]
    assert int(refused["Retry-After"]) > 0
    honest = APIClient(REMOTE_ADDR=address())
    honest.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert honest.get("/api/projects/").status_code == 200


def test_making_tokens_is_rate_limited(client, make_user) -> None:
    client.force_login(make_user("alice"))
    form = {"days": "30", "read_only": "1"}
    for n in range(10):
        assert client.post("/account/tokens/", {**form, "name": f"t{n}"}).context["new_token"]
    response = client.post("/account/tokens/", {**form, "name": "one too many"})
    assert response.context["new_token"] is None
    assert "Too many new tokens; try again in 60 minutes." in response.content.decode()
    assert ApiToken.objects.count() == 10


# --- /healthz --------------------------------------------------------------------


@pytest.fixture
def real_checks(monkeypatch) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """Each real check /healthz runs (health.report, counted and still run)."""
    from portal import health

    ran: list[str] = []
    real = health.report

    async def counted() -> dict[str, str]:
        ran.append("ran")
        return await real()

    monkeypatch.setattr(health, "report", counted)
    yield ran


def test_a_hundred_anonymous_healthz_calls_run_one_real_check(
    client, make_user, settings, real_checks, celery_worker_if_brokered
) -> None:
    settings.HEALTHZ_CACHE_SECONDS = 3600  # no answer expires during the test: counts, not time
    admin = Client()
    admin.force_login(make_user("root", admin=True))
    assert admin.get("/healthz?fresh=1").json()["tasks"] == "ok"
    assert len(real_checks) == 1

    answers = [client.get("/healthz?fresh=1") for _ in range(50)]  # fresh is an Admin's only

    async def burst() -> list[int]:
        anonymous = AsyncClient()
        responses = await asyncio.gather(*(anonymous.get("/healthz") for _ in range(50)))
        return [response.status_code for response in responses]

    assert asyncio.run(burst()) == [200] * 50
    assert {a.status_code for a in answers} == {200}
    assert len(real_checks) == 1

    # An Admin's forced check runs again, and its answer is the one everyone shares.
    admin.get("/healthz?fresh=1")
    assert len(real_checks) == 2


def test_concurrent_callers_of_an_expired_answer_share_one_check(
    make_user, settings, real_checks, celery_worker_if_brokered
) -> None:
    settings.HEALTHZ_CACHE_SECONDS = 0  # the Admin's answer is stale at once
    admin = Client()
    admin.force_login(make_user("root", admin=True))
    admin.get("/healthz?fresh=1")
    assert len(real_checks) == 1
    settings.HEALTHZ_CACHE_SECONDS = 3600

    async def burst() -> list[int]:
        anonymous = AsyncClient()
        responses = await asyncio.gather(*(anonymous.get("/healthz") for _ in range(100)))
        return [response.status_code for response in responses]

    assert asyncio.run(burst()) == [200] * 100
    assert len(real_checks) == 2
