"""Issue 12, point 5: the approval page marks the lines of a diff that change authentication
or exposure, with a short reason; one pure function decides (hosts.changes.diff_risk.mark), the
change page, the approvals queue and the drift list show it, everything escaped."""

from __future__ import annotations

import json

import pytest

from hosts.changes.diff_risk import mark
from hosts.changes.files import daemon_json, docker, firewall, sshd, sysctl
from hosts.changes.render import unified_diff
from hosts.models import Change, ChangeRun, Host
from portal.models import Project, Role
from tests.changes.test_renderers import PHOTON_DOCKER_UNIT, PHOTON_IP4SAVE, PHOTON_SSHD


def marked(diff: str) -> dict[str, str]:
    """Changed line -> reason, for the lines marked."""
    return {line.text: line.reason for line in mark(diff) if line.reason}


def test_sshd_lines_that_change_who_logs_in_and_how_are_marked() -> None:
    after = sshd.render(
        PHOTON_SSHD,
        {"PermitRootLogin": "yes", "PasswordAuthentication": "yes", "AllowUsers": "ops", "MaxAuthTries": 3},
    )
    diff = unified_diff(sshd.PATH, PHOTON_SSHD, after)
    risky = marked(diff)
    assert risky["+PermitRootLogin yes"] == "changes whether root may log in"
    assert risky["-PermitRootLogin prohibit-password"] == "changes whether root may log in"
    assert risky["+PasswordAuthentication yes"] == "changes whether passwords open accounts"
    assert risky["+AllowUsers ops"] == "changes who may log in"
    # Ordinary tuning, the headers and the context are not.
    assert "+MaxAuthTries 3" not in risky and "-MaxAuthTries 4" not in risky
    assert all(text[:1] in "+-" and not text.startswith(("+++", "---")) for text in risky)
    lines = mark(diff)
    assert [line.text for line in lines] == diff.splitlines()  # every line kept, in order


def test_firewall_rules_that_let_traffic_in_are_marked() -> None:
    opened = firewall.render(PHOTON_IP4SAVE, {"open": ["tcp/2376", "udp/53"]})
    risky = marked(unified_diff(firewall.PATH, PHOTON_IP4SAVE, opened))
    assert risky == {
        "+-A INPUT -p tcp -m tcp --dport 2376 -j ACCEPT": "opens tcp/2376 to everyone",
        "+-A INPUT -p udp -m udp --dport 53 -j ACCEPT": "opens udp/53 to everyone",
    }
    closed = firewall.render(opened, {"closed": ["tcp/2376"]})
    assert marked(unified_diff(firewall.PATH, opened, closed)) == {
        "--A INPUT -p tcp -m tcp --dport 2376 -j ACCEPT": "closes tcp/2376"
    }
    policy = PHOTON_IP4SAVE.replace(":INPUT DROP [0:0]", ":INPUT ACCEPT [0:0]")
    assert policy != PHOTON_IP4SAVE
    reasons = set(marked(unified_diff(firewall.PATH, PHOTON_IP4SAVE, policy)).values())
    assert reasons == {"changes what the firewall does with incoming traffic by default"}


def test_the_docker_engine_on_tcp_is_marked_plain_tcp_loudest() -> None:
    plain = docker.render("", {"enabled": True, "insecure": True}, unit_text=PHOTON_DOCKER_UNIT)
    tls = docker.render("", {"enabled": True}, unit_text=PHOTON_DOCKER_UNIT)
    plain_reasons = set(marked(unified_diff(docker.DROP_IN, "", plain)).values())
    assert plain_reasons == {"the Docker engine on TCP without TLS: root for anyone who reaches the port"}
    tls_reasons = set(marked(unified_diff(docker.DROP_IN, "", tls)).values())
    assert tls_reasons == {"the Docker engine listens on TCP (TLS, client certificates)"}


def test_daemon_json_marks_every_line_of_a_risky_option_and_nothing_else() -> None:
    before = '{\n  "log-driver": "json-file"\n}\n'
    after = daemon_json.render(
        before,
        {
            "log-driver": "local",
            "log-opts": {"max-size": "10m"},
            "insecure-registries": ["registry.lab:5000", "10.0.0.0/8"],
        },
    )
    assert json.loads(after)["insecure-registries"] == ["registry.lab:5000", "10.0.0.0/8"]
    risky = marked(unified_diff(daemon_json.PATH, before, after))
    reason = "Docker pulls from these without checking TLS"
    assert {text.strip(" +,") for text in risky} == {
        '"insecure-registries": [',
        '"registry.lab:5000"',
        '"10.0.0.0/8"',
        "]",
    }
    assert set(risky.values()) == {reason}


def test_sysctl_forwarding_and_parameters_off_the_list_are_marked() -> None:
    before = "kernel.core_pattern = |/tmp/x\n"
    after = sysctl.render(before, {"net.ipv4.ip_forward": "1", "vm.swappiness": "10"})
    risky = marked(unified_diff(sysctl.PATH, before, after))
    assert risky == {"+net.ipv4.ip_forward = 1": "routes traffic between networks"}
    old = unified_diff(sysctl.PATH, "", before)
    assert marked(old) == {"+kernel.core_pattern = |/tmp/x": "a kernel parameter off the portal's list"}


def test_several_files_in_one_diff_are_each_judged_by_their_own_rules() -> None:
    sshd_diff = unified_diff(sshd.PATH, "Port 22\n", "Port 2222\n")
    sysctl_diff = unified_diff(sysctl.PATH, "", "net.core.somaxconn = 1024\n")
    # "Port" means nothing in a sysctl file; "net.core" nothing in sshd's.
    assert marked(sysctl_diff + sshd_diff) == {
        "-Port 22": "changes where SSH listens",
        "+Port 2222": "changes where SSH listens",
    }
    assert marked("+PermitRootLogin yes\n") == {}  # no file named: nothing to judge by
    assert marked("") == {}


@pytest.mark.django_db
def test_the_change_page_and_the_approvals_queue_show_the_marks_escaped(client, make_user) -> None:
    project = Project.objects.create(name="fleet")
    admin = make_user("pa", project=project, role=Role.PROJECT_ADMIN)
    prov = make_user("prov", project=project, role=Role.PROVISIONER)
    host = Host.objects.create(project=project, name="photon-1", docker_url="tcp://192.0.2.1:2376")
    change = Change.objects.create(project=project, title="t", created_by=prov, status="awaiting_approval")
    diff = (
        "--- a/etc/ssh/sshd_config\n+++ b/etc/ssh/sshd_config\n@@ -1,2 +1,2 @@\n"
        "-MaxAuthTries 6\n+MaxAuthTries 3\n+PermitRootLogin yes\n+Banner <script>alert(1)</script>\n"
    )
    ChangeRun.objects.create(change=change, host=host, files=[{"path": sshd.PATH, "diff": diff}])
    client.force_login(admin)
    for url in (f"/hosts/changes/{change.pk}/", "/work/approvals/"):
        html = client.get(url).content.decode()
        assert (
            '<mark class="risky" title="changes whether root may log in">+PermitRootLogin yes</mark>'
            '<span class="risk-reason">  ⚠ changes whether root may log in</span>' in html
        ), url
        assert (
            '<mark class="risky" title="a file sshd shows to anyone before login">+Banner &lt;script&gt;'
            in html
        )
        assert "<script>alert(1)" not in html
        assert '">+MaxAuthTries 3\n</span>' in html  # ordinary lines stay plain (a line's block, unmarked)
        assert 'class="label label-warning">changes whether root may log in</span>' in html  # the summary
