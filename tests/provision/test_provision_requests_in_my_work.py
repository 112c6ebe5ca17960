"""A provisioning request's status is its VMs' (running, done, failed, partial), shown on
the provisioning list and as a row of its requester's My work, which moves live with
every VM state change. No lab: the requests and VMs are made as rows."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from hosts.models import ProvisionedVm, ProvisionRequest, VCenter
from hosts.provision import summary as provision_summary
from hosts.provision import tokens, vm_state
from portal.asgi import application
from portal.models import Project, Role
from tests.conftest import session_cookie
from tests.test_my_work import next_event
from tests.threads import orm_in_thread

pytestmark = pytest.mark.django_db

State = ProvisionedVm.State


def make_request(
    project: Project,
    requester: Any,
    states: list[str],
    *,
    pattern: str = "web-{n}",
    vcenter: VCenter | None = None,
    details: dict[int, str] | None = None,
) -> ProvisionRequest:
    """A request with one VM per state (``details``: a VM's detail by its index)."""
    req = ProvisionRequest.objects.create(
        project=project, requester=requester, vcenter=vcenter, count=len(states), name_pattern=pattern
    )
    for i, state in enumerate(states):
        ProvisionedVm.objects.create(
            request=req,
            name=pattern.replace("{n}", str(i + 1)),
            instance_id=f"portal-{uuid.uuid4()}",
            token_hash=uuid.uuid4().hex,
            token_expires=tokens.expiry(),
            state=state,
            detail=(details or {}).get(i, ""),
        )
    return req


def row_of(html: str, dom_id: str) -> str:
    """The one table row whose id is ``dom_id`` (fails when it is not there)."""
    assert f'id="{dom_id}"' in html, f"no row {dom_id}"
    return html.split(f'id="{dom_id}"', 1)[1].split("</tr>", 1)[0]


@pytest.fixture
def vcenter(db: None) -> VCenter:
    # Only a row: nothing here connects to it.
    return VCenter.objects.create(name="vc", url="https://vc.test", username="u", password="p")


@pytest.fixture
def prov(project: Project, make_user: Any) -> Any:
    return make_user("prov", project=project, role=Role.PROVISIONER)


# -- the status of a request --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("states", "status", "label", "progress"),
    [
        ([State.QUEUED, State.CLONING, State.WAITING], "running", "Running", 33),  # (0 + 25 + 75) / 3
        ([State.POWERING_ON], "running", "Running", 50),
        # One failed, one still on its way: not over yet.
        ([State.FAILED, State.WAITING], "running", "Running", 87),  # (100 + 75) / 2, rounded down
        ([State.ENROLLED, State.ENROLLED], "done", "Enrolled", 100),
        ([State.FAILED, State.FAILED], "failed", "Failed", 100),
        ([State.ENROLLED, State.FAILED, State.ENROLLED], "partial", "Partly enrolled (2 of 3)", 100),
    ],
)
def test_the_status_of_a_request_is_its_vms(
    project: Project,
    prov: Any,
    states: list[str],
    status: str,
    label: str,
    progress: int,
    django_assert_num_queries: Any,
) -> None:
    req = make_request(project, prov, states)
    expected = provision_summary.RequestSummary(status=status, label=label, progress=progress)
    assert provision_summary.summary(req) == expected  # read from the request's VMs
    with django_assert_num_queries(0):  # states given: nothing is read
        assert provision_summary.summary(req, [str(s) for s in states]) == expected
    prefetched = ProvisionRequest.objects.prefetch_related("vms").get(pk=req.pk)
    with django_assert_num_queries(0):  # VMs prefetched: nothing is read either
        assert provision_summary.summary(prefetched) == expected


def test_a_request_without_vms_is_not_running(project: Project, prov: Any) -> None:
    # Never made by the portal (the VMs are saved with their request), but it must not
    # sit in "Running" for ever if it exists.
    req = make_request(project, prov, [])
    assert provision_summary.summary(req) == provision_summary.RequestSummary("failed", "No hosts", 100)


# -- My work ------------------------------------------------------------------------------------------


def test_my_work_lists_my_provisioning_requests_only(
    client: Client, project: Project, prov: Any, vcenter: VCenter, make_user: Any
) -> None:
    other = make_user("other", project=project, role=Role.PROVISIONER)
    secret = Project.objects.create(name="secret")
    cloning = make_request(project, prov, [State.ENROLLED, State.CLONING, State.QUEUED], vcenter=vcenter)
    partial = make_request(
        project,
        prov,
        [State.ENROLLED, State.FAILED, State.FAILED],
        pattern="db-{n}",
        vcenter=vcenter,
        details={1: "vCenter refused: <no room>", 2: "Did not phone home in time."},
    )
    kickstart = make_request(project, prov, [State.ENROLLED], pattern="bare-1")
    theirs = make_request(project, other, [State.QUEUED], pattern="theirs-{n}", vcenter=vcenter)
    # Asked for in a project I no longer belong to.
    hidden = make_request(secret, prov, [State.FAILED], pattern="hidden-{n}", vcenter=vcenter)
    client.force_login(prov)

    html = client.get("/work/").content.decode()
    row = row_of(html, f"request-provision-{cloning.pk}")
    assert 'data-kind="provision"' in row and 'data-bucket="running"' in row and "Running" in row
    assert '<span class="label">Provisioning</span>' in row
    assert "provision web-{n} \N{MULTIPLICATION SIGN}3" in row
    assert reverse("hosts:provision_request", args=[cloning.pk]) in row
    # (100 + 25 + 0) / 3, rounded down
    assert '<progress class="request-progress" max="100" value="41">' in row
    assert ">fleet<" in row
    row = row_of(html, f"request-provision-{partial.pk}")
    assert 'data-status="partial"' in row and 'data-bucket="failed"' in row
    assert "Partly enrolled (1 of 3)" in row and "<progress" not in row
    # The first VM that failed says why (escaped like everything else).
    assert "vCenter refused: &lt;no room&gt;" in row and "phone home" not in row
    row = row_of(html, f"request-provision-{kickstart.pk}")
    assert "kickstart bare-1" in row and 'data-bucket="done"' in row and "Enrolled" in row
    assert f"request-provision-{theirs.pk}" not in html and "theirs-" not in html
    assert f"request-provision-{hidden.pk}" not in html and "hidden-" not in html

    running = client.get("/work/?view=running").content.decode()
    assert f"request-provision-{cloning.pk}" in running
    assert f"request-provision-{partial.pk}" not in running
    assert f"request-provision-{kickstart.pk}" not in running
    failed = client.get("/work/?view=failed").content.decode()
    assert f"request-provision-{partial.pk}" in failed and f"request-provision-{cloning.pk}" not in failed


def test_my_work_reads_every_provisioning_request_in_a_fixed_number_of_queries(
    client: Client, project: Project, prov: Any, vcenter: VCenter, django_assert_max_num_queries: Any
) -> None:
    def add(n: int) -> None:
        for i in range(n):
            states = [State.QUEUED, State.ENROLLED, State.FAILED][: 1 + i % 3]
            make_request(project, prov, states, pattern=f"batch{ProvisionRequest.objects.count()}-{{n}}")

    def queries() -> int:
        with CaptureQueriesContext(connection) as context:
            assert client.get("/work/").status_code == 200
        return len(context.captured_queries)

    client.force_login(prov)
    add(2)
    client.get("/work/")  # the session and the like, read once
    few = queries()
    add(10)
    with django_assert_max_num_queries(few):  # 12 requests cost what 2 did
        html = client.get("/work/").content.decode()
    assert html.count('data-kind="provision"') == 12


# -- the provisioning list ------------------------------------------------------------------------


def test_the_list_shows_each_requests_status(
    client: Client, project: Project, prov: Any, vcenter: VCenter, make_user: Any
) -> None:
    viewer = make_user("viewer", project=project, role=Role.VIEWER)
    going = make_request(project, prov, [State.WAITING, State.CLONING], vcenter=vcenter)
    done = make_request(project, prov, [State.ENROLLED], pattern="ok-{n}", vcenter=vcenter)
    broken = make_request(project, prov, [State.FAILED, State.ENROLLED], pattern="half-{n}", vcenter=vcenter)
    client.force_login(viewer)

    html = client.get(reverse("hosts:provision")).content.decode()
    assert ">Status</th>" in html
    row = row_of(html, f"provision-request-{going.pk}")
    assert 'data-status="running"' in row and "Running" in row and 'value="50"' in row  # (75 + 25) / 2
    row = row_of(html, f"provision-request-{done.pk}")
    assert 'data-status="done"' in row and "Enrolled" in row and "<progress" not in row
    row = row_of(html, f"provision-request-{broken.pk}")
    assert 'data-status="partial"' in row and "Partly enrolled (1 of 2)" in row and "<progress" not in row


def test_the_list_reads_every_requests_vms_in_one_query(
    client: Client, project: Project, prov: Any, django_assert_max_num_queries: Any
) -> None:
    client.force_login(prov)
    for i in range(2):
        make_request(project, prov, [State.CLONING, State.ENROLLED], pattern=f"a{i}-{{n}}")
    client.get(reverse("hosts:provision"))  # the session and the like, read once
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("hosts:provision"))
    for i in range(10):
        make_request(project, prov, [State.CLONING, State.ENROLLED], pattern=f"b{i}-{{n}}")
    with django_assert_max_num_queries(len(few.captured_queries)):  # 12 requests cost what 2 did
        html = client.get(reverse("hosts:provision")).content.decode()
    assert html.count('data-status="running"') == 12


# -- live -----------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_vm_state_change_moves_the_row_on_my_work_live(project: Project, prov: Any) -> None:
    req = make_request(project, prov, [State.ENROLLED, State.QUEUED], pattern="live-{n}")
    first, second = req.vms.order_by("id")
    cookie = session_cookie(Client(), prov)
    dom_id = f'id="request-provision-{req.pk}"'

    async def scenario() -> list[dict[str, Any]]:
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
        await ws.send_json_to({"subscribe": [f"requests:user:{prov.pk}"]})
        assert (await ws.receive_json_from(timeout=5))["refused"] == []
        seen = []
        # As the clone and the overdue check do: through set_state, from another thread.
        await orm_in_thread(vm_state.set_state, second, State.CLONING)
        seen.append(await next_event(ws))
        await orm_in_thread(vm_state.set_state, second, State.FAILED, "vCenter refused: no room")
        seen.append(await next_event(ws))
        await ws.disconnect()
        return seen

    cloning, failed = asyncio.run(scenario())
    assert dom_id in cloning["html"] and dom_id in failed["html"]
    assert cloning["data"] == {"provision": req.pk, "status": "running"}
    assert 'data-bucket="running"' in cloning["html"] and 'value="62"' in cloning["html"]  # (100 + 25) / 2
    assert failed["data"] == {"provision": req.pk, "status": "partial"}
    assert 'data-bucket="failed"' in failed["html"] and "Partly enrolled (1 of 2)" in failed["html"]
    assert "vCenter refused: no room" in failed["html"]
    assert first.state == State.ENROLLED  # the other VM's state counted, untouched


def test_a_row_that_cannot_be_pushed_does_not_fail_the_vm(
    project: Project, prov: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from hosts.provision import work as provision_work

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("template gone")

    monkeypatch.setattr(provision_work, "provision_request", broken)
    req = make_request(project, prov, [State.WAITING], pattern="solid-{n}")
    pvm = req.vms.get()
    with caplog.at_level(logging.WARNING, logger="portal.work"):
        vm_state.set_state(pvm, State.ENROLLED, "Enrolled from 10.0.0.9.")
    pvm.refresh_from_db()
    assert pvm.state == State.ENROLLED
    assert f"provisioning request {req.pk} not published" in caplog.text
