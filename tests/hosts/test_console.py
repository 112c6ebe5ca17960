"""A container's console, what is refused before any engine is asked (issue 17): a Viewer, another
project's person, a disabled host and a forged container id get a sentence and a closed socket,
nothing started and nothing audited. The shell itself is tested on a lab engine
(test_console_on_lab.py and tests/e2e/test_console.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.urls import reverse

from hosts.console.session import command_of
from hosts.models import Host
from portal.asgi import application
from portal.models import AuditEntry, Role
from portal.refused import Refused
from tests.conftest import session_cookie

ORIGIN = "http://127.0.0.1"
CONTAINER = "ab" * 32


def communicator(path: str, cookie: str | None, origin: str = ORIGIN) -> WebsocketCommunicator:
    headers = [(b"host", b"127.0.0.1"), (b"origin", origin.encode())]
    if cookie:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


async def answer(path: str, cookie: str | None, origin: str = ORIGIN) -> tuple[bool, dict[str, Any], int]:
    """Whether the socket opened, the one text frame it then sent, and its close code."""
    ws = communicator(path, cookie, origin)
    connected, _ = await ws.connect(timeout=10)
    if not connected:
        await ws.disconnect()
        return False, {}, 0
    frame = json.loads(await ws.receive_from(timeout=10))
    closed = await ws.receive_output(timeout=10)
    await ws.disconnect()
    return True, frame, closed.get("code", 0)


@pytest.fixture
def host(project) -> Host:  # type: ignore[no-untyped-def]
    # An endpoint nothing listens on: every refusal here must come before the engine is asked.
    return Host.objects.create(
        project=project, name="photon-c", docker_url="tcp://127.0.0.1:9", insecure=True
    )


@pytest.mark.django_db(transaction=True)
def test_only_a_provisioner_of_the_hosts_project_may_open_one(
    client, people, other_project, make_user, host
) -> None:
    path = f"/ws/console/{host.pk}/{CONTAINER}/"
    assert asyncio.run(answer(path, None)) == (False, {}, 0)  # anonymous: refused at the handshake

    stranger = make_user("stranger", project=other_project, role=Role.PROJECT_ADMIN)
    for person in (people["viewer"], people["outsider"], stranger):
        opened, frame, code = asyncio.run(answer(path, session_cookie(client, person)))
        assert opened and frame == {"error": "You may not open a console on this host."}, person
        assert code == 4403

    # A forged host id reads the same as one the person may not use.
    opened, frame, code = asyncio.run(
        answer("/ws/console/999999/" + CONTAINER + "/", session_cookie(client, people["manager"]))
    )
    assert frame == {"error": "You may not open a console on this host."} and code == 4403

    # Another site's page driving a Provisioner's browser: refused before the session is read.
    cookie = session_cookie(client, people["provisioner"])
    assert asyncio.run(answer(path, cookie, origin="http://evil.example")) == (False, {}, 0)

    host.enabled = False
    host.save()
    assert asyncio.run(answer(path, cookie))[1] == {"error": "You may not open a console on this host."}
    assert not AuditEntry.objects.filter(action__startswith="container.console").exists()


@pytest.mark.django_db(transaction=True)
def test_a_forged_container_or_command_is_refused_with_a_sentence(client, people, host) -> None:
    cookie = session_cookie(client, people["provisioner"])
    opened, frame, code = asyncio.run(answer(f"/ws/console/{host.pk}/not-hex/", cookie))
    assert opened and frame == {"error": "No such container."} and code == 4409
    opened, frame, code = asyncio.run(answer(f"/ws/console/{host.pk}/{CONTAINER}/?shell=/bin/rm", cookie))
    assert frame == {"error": "Pick one of /bin/sh, /bin/bash or give a command."}
    # The engine does not answer: said so, in the portal's words, with the host's name.
    opened, frame, code = asyncio.run(answer(f"/ws/console/{host.pk}/{CONTAINER}/", cookie))
    assert frame["error"].startswith("photon-c: ") and code == 4409
    assert not AuditEntry.objects.filter(action__startswith="container.console").exists()


def test_the_command_is_split_as_a_shell_would_and_never_empty() -> None:
    assert command_of("/bin/bash") == ["/bin/bash"]
    assert command_of("/bin/sh", "python3 -c 'print(1)'") == ["python3", "-c", "print(1)"]
    for shell, command in (("/bin/zsh", ""), ("", "   "), ("/bin/sh", "echo 'open")):
        with pytest.raises(Refused):
            command_of(shell, command)


@pytest.mark.django_db
def test_the_console_page_is_for_provisioners_and_lets_only_styles_inline(client, people, host) -> None:
    url = reverse("hosts:container_console", args=[host.pk, CONTAINER])
    client.force_login(people["viewer"])
    assert client.get(url).status_code == 403
    client.force_login(people["outsider"])
    assert client.get(url).status_code == 404
    client.force_login(people["provisioner"])
    page = client.get(url)
    # The engine is down: the page says so instead of a terminal that cannot connect.
    assert page.status_code == 200 and 'id="console-form"' not in page.content.decode()
    assert "alert-danger" in page.content.decode()
    # django-csp writes its directives in no fixed order: read them as a map.
    policy = dict(
        (name, sources)
        for name, _, sources in (
            directive.strip().partition(" ") for directive in page["Content-Security-Policy"].split(";")
        )
    )
    assert policy["style-src"] == "'self' 'unsafe-inline'" and policy["script-src"] == "'self'"
    # Elsewhere, no inline style either.
    assert "unsafe-inline" not in client.get(reverse("hosts:host", args=[host.pk]))["Content-Security-Policy"]
