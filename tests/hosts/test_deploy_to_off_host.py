"""A deploy to a host whose engine is not reachable (OFF: it stopped answering the
portal's checks; or disabled by a person) is refused when asked, not failed later: the
deploy page says why with its button disabled, the host page marks its deploy link, and
a submitted form is refused with the same sentence, recording and queuing nothing."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from hosts.fleet import services
from hosts.models import Deploy, Host
from hosts.models.host import HostStatus
from portal.models import AuditEntry, Project, Role
from portal.refused import Refused
from tests.queued import record_queued

pytestmark = pytest.mark.django_db

OFF_SAID = (
    "Host photon-01 is off: its engine has not answered the portal's last checks. Deploy once it is back on."
)
DISABLED_SAID = "Host photon-01 is disabled: enable it first."


@pytest.fixture
def project(db: None) -> Project:
    return Project.objects.create(name="Team A")


@pytest.fixture
def browser(make_user, project: Project) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(make_user("prov", project=project, role=Role.PROVISIONER))
    return client


def _host(project: Project, **fields: Any) -> Host:
    # Port 9 (discard): were the engine asked, the test would see a connection error instead.
    return Host.objects.create(project=project, name="photon-01", docker_url="tcp://127.0.0.1:9", **fields)


FORM = {"image": "lab/busybox:1.35", "restart_policy": "no", "network": "bridge", "token": "t0k3n-0001"}


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"status": HostStatus.OFF, "failures": 3}, OFF_SAID),
        ({"enabled": False, "status": HostStatus.DISABLED}, DISABLED_SAID),
    ],
)
def test_a_deploy_to_an_unreachable_host_is_refused_when_asked(
    browser: Client, project: Project, fields: dict[str, Any], said: str
) -> None:
    host = _host(project, **fields)
    page = browser.get(f"/hosts/{host.pk}/deploy/").content.decode()
    assert said.replace("'", "&#x27;") in page
    button = re.search(r'<button[^>]*id="deploy-button"[^>]*>', page)
    assert button and " disabled" in button.group(0)

    answer = browser.post(f"/hosts/{host.pk}/deploy/", FORM, HTTP_HX_REQUEST="true")
    assert answer.status_code == 409
    assert said.replace("'", "&#x27;") in answer.content.decode()
    with pytest.raises(Refused) as refused:
        services.request_deploy(host, None, {"image": "lab/busybox:1.35"}, "t0k3n-0001")
    assert refused.value.message == said and refused.value.status == 409
    assert not Deploy.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="container.").exists()


def test_the_host_page_marks_the_deploy_link_of_an_off_host(browser: Client, project: Project) -> None:
    host = _host(project, status=HostStatus.OFF, failures=3)
    page = browser.get(f"/hosts/{host.pk}/").content.decode()
    link = re.search(r'<[^>]*id="deploy-link"[^>]*>', page)
    assert link and "disabled" in link.group(0) and "title=" in link.group(0)


@pytest.mark.parametrize("status", [HostStatus.ON, HostStatus.SUSPECT, HostStatus.UNKNOWN])
def test_a_host_that_may_answer_takes_a_deploy(
    browser: Client, project: Project, status: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Degraded (one failed check) or not yet seen: the engine may well answer; try."""
    queued = record_queued(monkeypatch, lambda _name, args: args[0])
    host = _host(project, status=status)
    page = browser.get(f"/hosts/{host.pk}/deploy/").content.decode()
    button = re.search(r'<button[^>]*id="deploy-button"[^>]*>', page)
    assert button and " disabled" not in button.group(0)
    answer = browser.post(f"/hosts/{host.pk}/deploy/", FORM, HTTP_HX_REQUEST="true")
    assert answer.status_code == 200 and "deploy-started" in answer.content.decode()
    assert queued == [Deploy.objects.get().pk]
