"""A container's console on a lab engine (issue 17), through the portal's websocket as a browser
uses it: the shell answers what is typed, a resize reaches the terminal, closing the socket ends
the shell and what it was running (the engine itself never does, moby#9098), a stopped container
or a missing shell is refused in words, an idle console is closed, and start and end are audited."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from hosts.console import consumer
from hosts.fleet import engine
from hosts.models import Host
from portal.models import AuditEntry
from tests.conftest import session_cookie
from tests.hosts.conftest import trusted_host
from tests.hosts.test_console import answer, communicator
from tests.lab import engines
from tests.lab.common import wait_until

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def running(tls_engine: dict[str, Any]) -> Iterator[Any]:
    """A running busybox container on the lab's TLS engine (removed afterwards)."""
    busybox = next(ref for ref in tls_engine["images"] if ref.startswith("lab/busybox:"))
    with closing(engines.connect(tls_engine)) as sdk:
        container = sdk.containers.run(
            busybox,
            engines.SERVE_CMD,
            name=f"console-{uuid.uuid4().hex[:8]}",
            detach=True,
            network_mode="none",
        )
        try:
            yield container
        finally:
            container.remove(force=True)


def execs_running(tls_engine: dict[str, Any], container_id: str) -> list[str]:
    """The container's exec processes still running, as the engine itself says (not the portal)."""
    with closing(engines.connect(tls_engine)) as sdk:
        ids = sdk.api.inspect_container(container_id).get("ExecIDs") or []
        return [i for i in ids if sdk.api.exec_inspect(i)["Running"]]


async def read_until(ws: WebsocketCommunicator, done: Callable[[str], bool], seen: list[str]) -> str:
    """The terminal's text until ``done`` holds of it (text frames are kept in ``seen``)."""
    text = ""
    while not done(text):
        output = await ws.receive_output(timeout=20)
        if output.get("bytes") is not None:
            text += output["bytes"].decode(errors="replace")
        elif output.get("text") is not None:
            seen.append(output["text"])
        else:
            raise AssertionError(f"closed before {text!r}: {output}, {seen}")
    return text


@pytest.mark.timeout(120)
def test_a_shell_answers_resizes_and_is_gone_from_the_engine_once_closed(
    client, people, project, tls_engine, running
) -> None:
    host = trusted_host(tls_engine, project, "photon-console")
    cookie = session_cookie(client, people["provisioner"])

    async def scenario() -> None:
        ws = communicator(f"/ws/console/{host.pk}/{running.id}/?shell=/bin/sh&cols=80&rows=24", cookie)
        connected, _ = await ws.connect(timeout=20)
        assert connected
        seen: list[str] = []
        await read_until(ws, lambda t: "# " in t, seen)  # the prompt
        await ws.send_to(text_data=json.dumps({"input": "echo hello; hostname\r"}))
        text = await read_until(ws, lambda t: running.id[:12] in t.split("hostname", 1)[-1], seen)
        assert "\r\nhello\r\n" in text

        await ws.send_to(text_data=json.dumps({"resize": [101, 33]}))
        await ws.send_to(text_data=json.dumps({"input": "stty size\r"}))
        await read_until(ws, lambda t: "33 101" in t, seen)

        # Something in the foreground when the page closes: it goes with the shell.
        await ws.send_to(text_data=json.dumps({"input": "sleep 600\r"}))
        await read_until(ws, lambda t: "sleep 600" in t, seen)
        assert execs_running(tls_engine, running.id)
        await ws.disconnect()
        assert seen == []

    asyncio.run(scenario())
    wait_until(lambda: not execs_running(tls_engine, running.id), timeout=20, what="the shell to end")
    top = running.top()["Processes"]
    assert not [p for p in top if "sleep 600" in p[-1]], top

    start = AuditEntry.objects.get(action="container.console_start")
    assert start.actor == people["provisioner"]
    assert start.after == {"container": running.id[:12], "command": "/bin/sh"}
    end = AuditEntry.objects.get(action="container.console_end")
    assert end.after["reason"] == "closed" and end.after["container"] == running.id[:12]
    # The keystrokes are nobody's business but the terminal's.
    assert "hello" not in json.dumps([start.after, end.after])


@pytest.mark.timeout(120)
def test_a_stopped_container_or_a_missing_shell_is_refused_in_words(
    client, people, project, tls_engine, running
) -> None:
    host = trusted_host(tls_engine, project, "photon-console")
    cookie = session_cookie(client, people["provisioner"])

    async def no_bash() -> tuple[str, list[str], int]:
        ws = communicator(f"/ws/console/{host.pk}/{running.id}/?shell=/bin/bash", cookie)
        assert (await ws.connect(timeout=20))[0]
        seen: list[str] = []
        text = ""
        while True:
            output = await ws.receive_output(timeout=20)
            if output["type"] == "websocket.close":
                await ws.disconnect()
                return text, seen, output.get("code", 0)
            if output.get("bytes") is not None:
                text += output["bytes"].decode(errors="replace")
            else:
                seen.append(output["text"])

    text, seen, code = asyncio.run(no_bash())
    assert "/bin/bash" in text  # the runtime's own words, on the terminal
    assert [json.loads(s) for s in seen] == [
        {"closed": "The container cannot run /bin/bash (exit 126): pick another shell or command."}
    ]
    assert code == 1000
    assert not execs_running(tls_engine, running.id)

    running.stop(timeout=1)
    _, frame, code = asyncio.run(answer(f"/ws/console/{host.pk}/{running.id}/", cookie))
    assert frame == {"error": "The container is exited: a console needs it running."} and code == 4409
    assert AuditEntry.objects.filter(action="container.console_start").count() == 1  # the bash one


@pytest.mark.timeout(120)
def test_an_idle_console_is_closed_and_its_shell_ended(
    client, people, project, tls_engine, running, settings, monkeypatch
) -> None:
    settings.CONSOLE_IDLE_SECONDS = 1
    monkeypatch.setattr(consumer, "RECHECK_SECONDS", 0.2)
    host = trusted_host(tls_engine, project, "photon-console")
    cookie = session_cookie(client, people["provisioner"])

    async def scenario() -> tuple[list[str], int]:
        ws = communicator(f"/ws/console/{host.pk}/{running.id}/", cookie)
        assert (await ws.connect(timeout=20))[0]
        seen: list[str] = []
        while True:
            output = await ws.receive_output(timeout=20)
            if output["type"] == "websocket.close":
                await ws.disconnect()
                return seen, output.get("code", 0)
            if output.get("text") is not None:
                seen.append(output["text"])

    seen, code = asyncio.run(scenario())
    assert code == 1000
    assert [json.loads(s) for s in seen] == [{"closed": "Closed after 0 minutes without a keystroke."}]
    wait_until(lambda: not execs_running(tls_engine, running.id), timeout=20, what="the shell to end")
    assert AuditEntry.objects.get(action="container.console_end").after["reason"] == "idle"


@pytest.mark.timeout(180)
def test_a_console_over_an_ssh_endpoint(client, people, project, tls_engine, lab_hosts) -> None:
    """The engine reached over SSH (``docker system dial-stdio``), whose channel's descriptor never
    says there is room to write: input is still written at once. (The lab's Photon-like hosts give
    containers the host's /proc, so the hang-up itself is checked on the TLS engine above.)"""
    photon = next(h for h in lab_hosts if h["full"])
    host = Host.objects.create(
        project=project,
        name="photon-ssh-console",
        docker_url=f"ssh://root@{photon['address']}",
        ssh_private_key=Path(photon["private_key"]).read_text(),
        ssh_host_key=photon["host_key"],
    )
    busybox = next(ref for ref in tls_engine["images"] if ref.startswith("lab/busybox:"))
    sdk = engine.client_for(host, timeout=60)
    with closing(engines.connect(tls_engine)) as other:
        sdk.images.load(b"".join(other.images.get(busybox).save(named=True)))
    container = sdk.containers.run(busybox, engines.SERVE_CMD, detach=True, network_mode="none")
    cookie = session_cookie(client, people["provisioner"])

    async def scenario() -> str:
        ws = communicator(f"/ws/console/{host.pk}/{container.id}/", cookie)
        assert (await ws.connect(timeout=20))[0]
        seen: list[str] = []
        await read_until(ws, lambda t: "# " in t, seen)
        await ws.send_to(text_data=json.dumps({"input": "echo over''ssh\r"}))
        text = await read_until(ws, lambda t: "\r\noverssh\r\n" in t, seen)
        # The end is waited for, as daphne does: its hang-up and audit come after the socket closes.
        await ws.disconnect(timeout=20)
        assert seen == []
        return text

    try:
        assert "overssh" in asyncio.run(scenario())
        assert AuditEntry.objects.filter(action="container.console_start", object_id=str(host.pk)).exists()
        # Its end too, once the hang-up was tried (the exec's channel closed first).
        assert (
            AuditEntry.objects.get(action="container.console_end", object_id=str(host.pk)).after["reason"]
            == "closed"
        )
    finally:
        container.remove(force=True)
        sdk.close()
