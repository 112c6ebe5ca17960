"""The event log: notify records, publishes to Admins and the project's members only."""

from __future__ import annotations

import asyncio

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client

from portal.asgi import application
from portal.events import notify
from portal.models import Event, Project, Role
from tests.conftest import session_cookie
from tests.threads import orm_in_thread


@pytest.mark.django_db(transaction=True)
def test_notify_reaches_members_and_admins_but_not_outsiders(make_user) -> None:
    web = Project.objects.create(name="web")
    member = make_user("member", project=web, role=Role.VIEWER)
    outsider = make_user("outsider", project=Project.objects.create(name="db"), role=Role.PROJECT_ADMIN)
    # One client each: signing a second user into the same client would end the first's session.
    cookies = {u.username: session_cookie(Client(), u) for u in (member, outsider)}

    async def scenario() -> tuple[dict, dict]:
        sockets = {}
        for name, cookie in cookies.items():
            ws = WebsocketCommunicator(
                application,
                "/ws/live/",
                headers=[
                    (b"host", b"127.0.0.1"),
                    (b"origin", b"http://127.0.0.1"),
                    (b"cookie", f"sessionid={cookie}".encode()),
                ],
            )
            assert (await ws.connect(timeout=10))[0]
            await ws.send_json_to({"subscribe": [f"events:project:{web.pk}", "events:all"]})
            sockets[name] = (ws, await ws.receive_json_from(timeout=5))
        await orm_in_thread(notify, "photon-01 is OFF <after 3 failed checks>", severity="error", project=web)
        event = await sockets["member"][0].receive_json_from(timeout=5)
        assert await sockets["outsider"][0].receive_nothing(timeout=0.3)
        for ws, _ in sockets.values():
            await ws.disconnect()
        return sockets["member"][1], event

    member_reply, event = asyncio.run(scenario())
    assert member_reply == {"subscribed": [f"events:project:{web.pk}"], "refused": ["events:all"]}
    assert event["data"]["severity"] == "error"
    assert "&lt;after 3 failed checks&gt;" in event["html"]
    stored = Event.objects.get()
    assert stored.project == web and stored.severity == "error"
