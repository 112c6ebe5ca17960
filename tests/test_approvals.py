"""The approvals queue: Project admins see the plans waiting for them with their diffs,
approve or reject them with a comment; the requester hears the decision live."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client

from hosts.changes import approval as change_approval
from hosts.changes import news
from hosts.models import Change, ChangeRun, Host
from portal.asgi import application
from portal.models import AuditEntry, Project, Role
from tests.conftest import session_cookie
from tests.test_my_work import next_event
from tests.threads import orm_in_thread

pytestmark = pytest.mark.django_db(transaction=True)

DIFF = "--- a/etc/ssh/sshd_config\n+++ b/etc/ssh/sshd_config\n-MaxAuthTries 6\n+MaxAuthTries 3\n"


@pytest.fixture
def world(make_user) -> dict[str, Any]:
    fleet = Project.objects.create(name="fleet")
    other = Project.objects.create(name="other")
    people = {
        "prov": make_user("prov", project=fleet, role=Role.PROVISIONER),
        "pa": make_user("pa", project=fleet, role=Role.PROJECT_ADMIN),
        "viewer": make_user("viewer", project=fleet, role=Role.VIEWER),
        "other_pa": make_user("other_pa", project=other, role=Role.PROJECT_ADMIN),
        "root": make_user("root", admin=True),
    }
    host = Host.objects.create(project=fleet, name="photon-1", docker_url="tcp://192.0.2.1:2376")
    return {"fleet": fleet, "other": other, "host": host, **people}


def waiting_change(world: dict[str, Any], title: str = "Apply profile hardened", diff: str = DIFF) -> Change:
    change = Change.objects.create(
        project=world["fleet"], title=title, created_by=world["prov"], status="awaiting_approval"
    )
    ChangeRun.objects.create(
        change=change,
        host=world["host"],
        files=[{"path": "/etc/ssh/sshd_config", "before": "", "after": "", "diff": diff}],
        restarts=["sshd"],
    )
    return change


def test_project_admins_see_waiting_plans_with_their_diffs(client, world) -> None:
    change = waiting_change(world, diff=DIFF + "+Banner <script>alert(1)</script>\n")
    Change.objects.create(
        project=world["fleet"], title="already done", created_by=world["prov"], status="applied"
    )
    elsewhere = Change.objects.create(project=world["other"], title="theirs", status="awaiting_approval")
    client.force_login(world["pa"])
    page = client.get("/work/approvals/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'id="approval-{change.pk}"' in html and "+MaxAuthTries 3" in html and "restarts sshd" in html
    assert "already done" not in html and f"approval-{elsewhere.pk}" not in html
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html  # a host's text is escaped
    client.force_login(world["root"])
    html = client.get("/work/approvals/").content.decode()
    assert f"approval-{change.pk}" in html and f"approval-{elsewhere.pk}" in html


@pytest.mark.parametrize("who", ["prov", "viewer"])
def test_who_does_not_approve_has_no_queue(client, world, who) -> None:
    waiting_change(world)
    client.force_login(world[who])
    assert client.get("/work/approvals/").status_code == 404


def test_approve_with_a_comment_is_audited_and_told_to_the_requester(client, world) -> None:
    change = waiting_change(world)
    client.force_login(world["pa"])
    response = client.post(
        f"/work/approvals/{change.pk}/approve/", {"comment": "fine, go"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert b'data-status="approved"' in response.content and b"Approved by pa: fine, go" in response.content
    change.refresh_from_db()
    assert change.status == "approved" and change.approved_by == world["pa"]
    entry = AuditEntry.objects.get(action="change.approve", object_id=str(change.pk))
    assert entry.actor == world["pa"] and entry.after["comment"] == "fine, go"
    assert "+MaxAuthTries 3" in entry.after["hosts"]["photon-1"]["diff"]

    client.force_login(world["prov"])
    row = client.get("/work/").content.decode()
    assert f'id="request-change-{change.pk}"' in row and "approved by pa: fine, go" in row

    # Deciding twice: a clear answer, nothing changes.
    client.force_login(world["pa"])
    again = client.post(f"/work/approvals/{change.pk}/reject/", {"comment": "no"}, follow=True)
    assert again.status_code == 200 and b"only a plan that has not been applied" in again.content
    assert Change.objects.get(pk=change.pk).status == "approved"
    assert not AuditEntry.objects.filter(action="change.reject").exists()


def test_reject_with_a_comment(client, world) -> None:
    change = waiting_change(world)
    client.force_login(world["pa"])
    response = client.post(f"/work/approvals/{change.pk}/reject/", {"comment": "not on Fridays"})
    assert response.status_code == 302 and response["Location"] == "/work/approvals/"
    change.refresh_from_db()
    assert change.status == "rejected"
    assert AuditEntry.objects.get(action="change.reject").after == {"comment": "not on Fridays"}
    client.force_login(world["prov"])
    failed = client.get("/work/?view=failed").content.decode()
    assert f"request-change-{change.pk}" in failed and "rejected by pa: not on Fridays" in failed


def test_only_the_projects_admins_decide(client, world) -> None:
    change = waiting_change(world)
    client.force_login(world["other_pa"])
    assert client.post(f"/work/approvals/{change.pk}/approve/").status_code == 404  # not even its existence
    for who in ("prov", "viewer"):
        client.force_login(world[who])
        assert client.post(f"/work/approvals/{change.pk}/approve/").status_code == 403
        assert client.post(f"/work/approvals/{change.pk}/reject/").status_code == 403
    client.force_login(world["pa"])
    assert client.get(f"/work/approvals/{change.pk}/approve/").status_code == 405  # POST only
    assert Change.objects.get(pk=change.pk).status == "awaiting_approval"
    assert not AuditEntry.objects.filter(action__in=["change.approve", "change.reject"]).exists()


def test_an_overlong_comment_is_refused_and_changes_nothing(client, world) -> None:
    change = waiting_change(world)
    client.force_login(world["pa"])
    response = client.post(
        f"/work/approvals/{change.pk}/approve/", {"comment": "x" * 5000}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200 and b"too long" in response.content
    assert Change.objects.get(pk=change.pk).status == "awaiting_approval"


def _communicator(cookie: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(
        application,
        "/ws/live/",
        headers=[
            (b"host", b"127.0.0.1"),
            (b"origin", b"http://127.0.0.1"),
            (b"cookie", f"sessionid={cookie}".encode()),
        ],
    )


async def _next_with(ws: WebsocketCommunicator, needle: str) -> dict[str, Any]:
    while True:
        event = await next_event(ws)
        if needle in event.get("html", ""):
            return event


def test_a_plan_arrives_in_the_queue_and_the_decision_reaches_the_requester_live(client, world) -> None:
    fleet = world["fleet"]
    # One client each: signing another user in on the same client ends the first session.
    pa_cookie = session_cookie(Client(), world["pa"])
    prov_cookie = session_cookie(Client(), world["prov"])
    stranger_cookie = session_cookie(Client(), world["other_pa"])
    change = waiting_change(world)
    change.status = "planning"
    change.save()

    async def scenario() -> None:
        queue, mine, stranger = (
            _communicator(pa_cookie),
            _communicator(prov_cookie),
            _communicator(stranger_cookie),
        )
        for ws in (queue, mine, stranger):
            assert (await ws.connect(timeout=10))[0]
        await queue.send_json_to({"subscribe": [f"project:{fleet.pk}:approvals"]})
        assert (await queue.receive_json_from(timeout=5))["refused"] == []
        await mine.send_json_to({"subscribe": [f"requests:user:{world['prov'].pk}"]})
        assert (await mine.receive_json_from(timeout=5))["refused"] == []
        # Neither someone else's requests nor another project's queue.
        await stranger.send_json_to(
            {"subscribe": [f"requests:user:{world['prov'].pk}", f"project:{fleet.pk}:approvals"]}
        )
        assert (await stranger.receive_json_from(timeout=5))["subscribed"] == []

        # The plan finishes: hosts.changes.news announces it, as plan() does.
        def planned() -> None:
            Change.objects.filter(pk=change.pk).update(status="awaiting_approval")
            news.publish_change(Change.objects.get(pk=change.pk))

        await orm_in_thread(planned)
        card = await _next_with(queue, f'id="approval-{change.pk}"')
        assert 'data-status="awaiting_approval"' in card["html"] and "+MaxAuthTries 3" in card["html"]
        row = await _next_with(mine, f'id="request-change-{change.pk}"')
        assert "Awaiting approval" in row["html"]

        def approve() -> None:
            change_approval.approve(Change.objects.get(pk=change.pk), world["pa"], comment="ship it")

        await orm_in_thread(approve)
        row = await _next_with(mine, "approved by pa: ship it")
        assert 'data-status="approved"' in row["html"]
        card = await _next_with(queue, 'data-status="approved"')
        assert "approval-form" not in card["html"]  # decided: no buttons left
        assert await stranger.receive_nothing(timeout=0.2)
        for ws in (queue, mine, stranger):
            await ws.disconnect()

    asyncio.run(scenario())
