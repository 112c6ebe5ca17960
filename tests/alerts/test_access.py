"""Who may see and change alert channels and rules; the secret shown once and never again."""

from __future__ import annotations

from typing import Any

import pytest

from alerts import services
from alerts.models import Channel, EmailOptOut, Rule
from portal.models import AuditEntry, Project

pytestmark = pytest.mark.django_db


@pytest.fixture
def channels(people: dict[str, Any], project: Project, other_project: Project) -> dict[str, Channel]:
    admin = people["admin"]
    return {
        "mine": services.create_channel(
            admin, project, kind="webhook", name="mine", recipients="", url="http://127.0.0.1:9/"
        ).channel,
        "theirs": services.create_channel(
            admin, other_project, kind="email", name="theirs", recipients="b@example.com", url=""
        ).channel,
        "global": services.create_channel(
            admin, None, kind="slack", name="everyone", recipients="", url="http://127.0.0.1:9/"
        ).channel,
    }


def test_viewers_and_other_projects_neither_see_nor_change_a_projects_channels(
    client: Any, people: dict[str, Any], project: Project, channels: dict[str, Channel]
) -> None:
    mine = channels["mine"]
    pages = [f"/alerts/projects/{project.pk}/", f"/alerts/channels/{mine.pk}/"]
    posts = [
        f"/alerts/channels/{mine.pk}/test/",
        f"/alerts/channels/{mine.pk}/delete/",
        f"/alerts/projects/{project.pk}/channels/",
        f"/alerts/projects/{project.pk}/rules/",
    ]
    for who, refused in (("viewer", 403), ("stranger", 404)):
        client.force_login(people[who])
        for url in pages:
            assert client.get(url).status_code == refused, (who, url)
        for url in posts:
            answer = client.post(url, {"kind": "email", "name": "x", "recipients": "x@example.com"})
            assert answer.status_code == refused, (who, url)
    assert Channel.objects.filter(project=project).count() == 1
    assert Channel.objects.filter(pk=mine.pk).exists()


def test_a_project_admin_manages_the_project_but_not_the_global_channels(
    client: Any, people: dict[str, Any], project: Project, channels: dict[str, Channel]
) -> None:
    client.force_login(people["manager"])
    assert client.get(f"/alerts/projects/{project.pk}/").status_code == 200
    assert client.get("/alerts/global/").status_code == 403
    answer = client.post(
        "/alerts/global/channels/", {"kind": "email", "name": "x", "recipients": "x@example.com"}
    )
    assert answer.status_code == 403
    assert client.get(f"/alerts/channels/{channels['global'].pk}/").status_code == 404
    assert client.post(f"/alerts/channels/{channels['global'].pk}/delete/").status_code == 404
    assert Channel.objects.filter(project=None).count() == 1


def test_a_channel_id_from_another_project_is_refused_in_a_rule(
    client: Any, people: dict[str, Any], project: Project, channels: dict[str, Channel]
) -> None:
    client.force_login(people["manager"])
    forged = {
        "name": "sneaky",
        "kinds": ["host.off"],
        "channels": [channels["mine"].pk, channels["theirs"].pk],
    }
    answer = client.post(f"/alerts/projects/{project.pk}/rules/", forged)
    assert answer.status_code == 400
    assert "Choose channels of this scope only." in answer.content.decode()
    global_one = {"name": "sneaky", "kinds": ["host.off"], "channels": [channels["global"].pk]}
    assert client.post(f"/alerts/projects/{project.pk}/rules/", global_one).status_code == 400
    assert not Rule.objects.exists()
    fine = {"name": "fine", "kinds": ["host.off"], "channels": [channels["mine"].pk]}
    assert client.post(f"/alerts/projects/{project.pk}/rules/", fine).status_code == 302
    assert AuditEntry.objects.filter(action="alerts.rule_create").count() == 1


def test_bad_input_changes_nothing_and_says_why(
    client: Any, people: dict[str, Any], project: Project
) -> None:
    client.force_login(people["manager"])
    url = f"/alerts/projects/{project.pk}/channels/"
    answer = client.post(url, {"kind": "webhook", "name": "hook", "url": "ftp://nowhere"})
    assert answer.status_code == 400 and "http:// or https://" in answer.content.decode()
    answer = client.post(url, {"kind": "email", "name": "mail", "recipients": "not-an-address"})
    assert answer.status_code == 400 and "not-an-address is not an e-mail address." in answer.content.decode()
    assert not Channel.objects.exists()


def test_the_secret_is_shown_once_on_creation_and_in_no_page_after(
    client: Any, people: dict[str, Any], project: Project
) -> None:
    client.force_login(people["manager"])
    answer = client.post(
        f"/alerts/projects/{project.pk}/channels/",
        {"kind": "webhook", "name": "hook", "url": "http://127.0.0.1:9/"},
    )
    channel = Channel.objects.get()
    secret = str(channel.secret)
    assert len(secret) > 30 and secret in answer.content.decode()
    # Encrypted at rest.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM alerts_channel WHERE id = %s", [channel.pk])
        (stored,) = cursor.fetchone()
    assert secret not in stored and stored.startswith("fernet:")
    pages = [
        "/alerts/",
        f"/alerts/projects/{project.pk}/",
        f"/alerts/channels/{channel.pk}/",
        "/audit/",
    ]
    for url in pages:
        page = client.get(url)
        assert page.status_code == 200, url
        assert secret not in page.content.decode(), url
    tested = client.post(f"/alerts/channels/{channel.pk}/test/")
    assert tested.status_code == 200 and secret not in tested.content.decode()
    assert "Test failed" in tested.content.decode()  # nobody listens on port 9
    for entry in AuditEntry.objects.all():
        assert secret not in str(entry.after) and secret not in str(entry.before)


def test_anyone_turns_their_own_alert_email_off_and_on(client: Any, people: dict[str, Any]) -> None:
    viewer = people["viewer"]
    client.force_login(viewer)
    assert client.get("/alerts/").status_code == 200
    client.post("/alerts/email/", {"opt_out": "1"})
    assert EmailOptOut.objects.filter(user=viewer).exists()
    client.post("/alerts/email/", {"opt_out": "0"})
    assert not EmailOptOut.objects.filter(user=viewer).exists()
    assert [e.action for e in AuditEntry.objects.order_by("id")][-2:] == [
        "alerts.email_opt_out",
        "alerts.email_opt_in",
    ]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:2375/containers/x/kill", "not to this machine"),
        ("http://localhost:8000/", "not to this machine"),
        ("http://169.254.169.254/latest/meta-data/", "link-local (cloud metadata)"),
        ("http://[::1]:2375/", "not to this machine"),
        ("http://10.20.30.40:2375/containers/x/kill", "an endpoint the portal manages"),
        ("https://engine-b.example.com:2376/containers/x/kill", "an endpoint the portal manages"),
        ("https://VC.example.com/sdk", "an endpoint the portal manages"),
    ],
)
def test_a_webhook_is_never_aimed_at_a_managed_machine_this_one_or_metadata(
    settings: Any, people: dict[str, Any], project: Project, other_project: Project, url: str, why: str
) -> None:
    """A Project admin's webhook would POST with the portal's network position: at another
    project's Docker API it could stop containers. Refused when made, and again at send time."""
    from hosts.models import Host, VCenter

    settings.ALERT_ALLOWED_NETWORKS = []
    Host.objects.create(
        project=other_project, name="b1", docker_url="tcp://10.20.30.40:2375", address="10.20.30.40"
    )
    Host.objects.create(project=other_project, name="b2", docker_url="tcp://engine-b.example.com:2376")
    VCenter.objects.create(name="vc", url="https://vc.example.com", username="u", password="p")
    with pytest.raises(services.Refused) as refused:
        services.create_channel(
            people["manager"], project, kind="webhook", name="evil", recipients="", url=url
        )
    assert why in refused.value.message
    assert not Channel.objects.filter(name="evil").exists()


def test_a_channel_made_before_its_target_became_a_managed_host_is_refused_at_send_time(
    settings: Any, people: dict[str, Any], project: Project
) -> None:
    from alerts import sending, targets
    from hosts.models import Host

    settings.ALERT_ALLOWED_NETWORKS = []
    made = services.create_channel(
        people["admin"], project, kind="webhook", name="later", recipients="", url="http://10.9.8.7:2375/x"
    ).channel
    Host.objects.create(project=project, name="h", docker_url="tcp://10.9.8.7:2375")
    answer = sending.send(made, {"kind": "host.off", "message": "m"}, 1)
    assert (answer.ok, answer.status) == (False, "refused") and "manages" in answer.text
    # The same machine's other services are not the portal's: a chat server there is fine.
    assert not targets.refusal("http://10.9.8.7:8065/hooks/abc")
