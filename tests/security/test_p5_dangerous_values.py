"""Issue 12, point 5: a profile value that is root on the host is refused, with the field and
the reason, by every way in (profile form, API, ``manage.py change``, the admin), and a
profile stored before the rules (written straight to the database) cannot be planned or
applied: refused before any SSH, no run created, nothing changed."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.core.management import CommandError, call_command

from hosts.changes import planning
from hosts.changes.api import ProfileSerializer
from hosts.models import Change, ChangeRun, Drift, Host, Profile, ProvisionedVm, ProvisionRequest
from hosts.provision import flow as provision
from hosts.provision import tokens
from portal.models import Event, Project, Role
from tests.api.common import client_for

pytestmark = pytest.mark.django_db

SAFE = {"sshd": {"MaxAuthTries": 3}}

#: (form field, value posted, words the refusal must hold).
DANGEROUS_FORM_VALUES = [
    ("banner", "/etc/shadow", ["Banner /etc/shadow is refused", "before login", "/etc/issue"]),
    ("banner", "/etc/issue/../shadow", ["is refused", "/etc/issue"]),
    ("banner", "/root/.ssh/id_rsa", ["Banner /root/.ssh/id_rsa is refused"]),
    ("banner", "/etc/issue.d/../../etc/shadow", ["is refused"]),
    ("sysctl", "kernel.modprobe = /tmp/evil", ["kernel.modprobe is never set", "runs that program as root"]),
    ("sysctl", "kernel.core_pattern = |/tmp/evil %p", ["kernel.core_pattern is never set", "run a program"]),
    ("sysctl", "kernel.usermodehelper.bset = 4294967295", ["kernel.usermodehelper.bset is never set"]),
    ("sysctl", "kernel.poweroff_cmd = /tmp/evil", ["kernel.poweroff_cmd is never set"]),
    ("sysctl", "fs.binfmt_misc.status = 1", ["fs.binfmt_misc.status is never set"]),
    ("sysctl", "kernel.randomize_va_space = 0", ["kernel.randomize_va_space is not on the portal's list"]),
    ("sysctl", "net.ipv4.ip_forward = /etc/shadow", ["value of net.ipv4.ip_forward cannot be a path"]),
    ("insecure_registries", "0.0.0.0/0", ["insecure registry 0.0.0.0/0 is refused", "without checking TLS"]),
    ("insecure_registries", "::/0", ["insecure registry ::/0 is refused"]),
    ("insecure_registries", "registry.lab 10.0.0.0/4", ["insecure registry 10.0.0.0/4 is refused", "/8"]),
    ("insecure_registries", "2001::/12", ["insecure registry 2001::/12 is refused", "/16"]),
]

#: Settings as a profile stored before the rules might hold them (or as the API would get them).
DANGEROUS_SETTINGS = [
    ({"sshd": {"Banner": "/etc/shadow"}}, "Banner /etc/shadow is refused"),
    ({"sshd": {"AuthorizedKeysCommand": "/tmp/evil"}}, "sshd AuthorizedKeysCommand is refused"),
    ({"sshd": {"ForceCommand": "/tmp/evil"}}, "sshd ForceCommand is refused"),
    ({"sshd": {"AuthorizedKeysFile": "/tmp/keys"}}, "sshd AuthorizedKeysFile is refused"),
    ({"sshd": {"PermitUserEnvironment": "yes"}}, "sshd PermitUserEnvironment is refused"),
    ({"sysctl": {"kernel.modprobe": "/tmp/evil"}}, "kernel.modprobe is never set"),
    ({"sysctl": {"kernel.core_pattern": "|/tmp/evil"}}, "kernel.core_pattern is never set"),
    ({"daemon_json": {"insecure-registries": ["0.0.0.0/0"]}}, "insecure registry 0.0.0.0/0 is refused"),
    ({"daemon_json": {"hosts": ["tcp://0.0.0.0:2375"]}}, "without tlsverify is root"),
    ({"daemon_json": {"tlsverify": False}}, "daemon.json tlsverify is refused"),
    ({"daemon_json": {"runtimes": {"x": {"path": "/tmp/evil"}}}}, "daemon.json runtimes is refused"),
    ({"daemon_json": {"data-root": "/etc"}}, "daemon.json data-root is refused"),
    ({"sysctl": ["kernel.modprobe"]}, "the sysctl settings must map names to values"),
]


@pytest.fixture
def world(make_user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    project = Project.objects.create(name="fleet")
    # TEST-NET: nothing answers there, so a run that tried SSH would say "unreachable".
    host = Host.objects.create(
        project=project, name="h1", docker_url="tcp://192.0.2.1:2376", address="192.0.2.1"
    )
    profile = Profile.objects.create(project=project, name="safe", settings=SAFE)
    profile.hosts.add(host)
    return {
        "project": project,
        "host": host,
        "profile": profile,
        "pa": make_user("pa", project=project, role=Role.PROJECT_ADMIN),
        "root": make_user("root", admin=True),
    }


def snapshot() -> list[tuple[Any, ...]]:
    return list(Profile.objects.order_by("pk").values_list("pk", "name", "settings", "updated"))


@pytest.mark.parametrize(("field", "value", "words"), DANGEROUS_FORM_VALUES)
def test_the_profile_form_refuses_a_root_value_naming_the_field_and_why(
    client, world, field: str, value: str, words: list[str]
) -> None:
    client.force_login(world["pa"])
    before = snapshot()
    base = {"project": world["project"].pk, "max_auth_tries": 3, "hosts": [world["host"].pk]}
    for url, name in (
        ("/hosts/changes/profiles/new/", "new"),
        (f"/hosts/changes/profiles/{world['profile'].pk}/", "safe"),
    ):
        response = client.post(url, {**base, "name": name, field: value})
        assert response.status_code == 200
        errors = response.context["form"].errors
        assert list(errors) == [field], errors  # on the field at fault, not somewhere else
        message = " ".join(errors[field])
        for word in words:
            assert word in message
        assert words[0] in response.content.decode().replace("&#x27;", "'")  # and shown to the person
    assert snapshot() == before


def test_the_safe_neighbours_of_the_refused_values_are_still_accepted(client, world) -> None:
    client.force_login(world["pa"])
    base = {"project": world["project"].pk}
    accepted = [
        ("banner", "/etc/issue", {"sshd": {"Banner": "/etc/issue"}}),
        ("banner", "/etc/issue.net", {"sshd": {"Banner": "/etc/issue.net"}}),
        ("banner", "none", {"sshd": {"Banner": "none"}}),
        ("sysctl", "net.ipv4.ip_forward = 1", {"sysctl": {"net.ipv4.ip_forward": "1"}}),
        ("sysctl", "vm.max_map_count = 262144", {"sysctl": {"vm.max_map_count": "262144"}}),
        (
            "sysctl",
            "fs.inotify.max_user_watches = 524288",
            {"sysctl": {"fs.inotify.max_user_watches": "524288"}},
        ),
        ("sysctl", "kernel.pid_max = 4194304", {"sysctl": {"kernel.pid_max": "4194304"}}),
        (
            "insecure_registries",
            "registry.lab:5000 10.0.0.0/8 fd00:1::/32",
            {"daemon_json": {"insecure-registries": ["registry.lab:5000", "10.0.0.0/8", "fd00:1::/32"]}},
        ),
    ]
    for number, (field, value, settings) in enumerate(accepted):
        response = client.post("/hosts/changes/profiles/new/", {**base, "name": f"ok{number}", field: value})
        assert response.status_code == 302, response.context["form"].errors
        assert Profile.objects.get(name=f"ok{number}").settings == settings


@pytest.mark.parametrize(("settings", "words"), DANGEROUS_SETTINGS)
def test_the_api_refuses_a_root_value_and_has_no_other_way_to_write_one(world, settings, words) -> None:
    profile = world["profile"]
    before = snapshot()
    api = client_for(world["pa"])
    # The API shows profiles but does not write them: no way round the rules there.
    for method in (api.patch, api.put):
        response = method(f"/api/profiles/{profile.pk}/", {"settings": settings}, format="json")
        assert response.status_code == 405
    assert api.post("/api/profiles/", {"name": "x", "settings": settings}, format="json").status_code == 405
    # Its serializer holds the same rules, for the day it does.
    body = ProfileSerializer(profile, data={"settings": settings}, partial=True)
    assert not body.is_valid()
    assert words in " ".join(str(e) for e in body.errors["settings"])
    assert snapshot() == before


@pytest.mark.parametrize(("settings", "words"), DANGEROUS_SETTINGS)
def test_a_stored_root_value_cannot_be_planned_by_any_way_in(client, world, settings, words) -> None:
    # As an old row would be: written straight to the database, no validation.
    Profile.objects.filter(pk=world["profile"].pk).update(settings=settings)
    profile = Profile.objects.get(pk=world["profile"].pk)
    host = world["host"]

    client.force_login(world["pa"])
    response = client.post(f"/hosts/changes/profiles/{profile.pk}/plan/")
    assert response.status_code == 302 and response.url == "/hosts/changes/"
    told = " ".join(str(m) for m in get_messages(response.wsgi_request))
    assert f"profile {profile.name} is refused" in told and words in told

    drift = Drift.objects.create(host=host, profile=profile, state="drifted", diff="-x\n+y\n")
    response = client.post(f"/hosts/changes/drift/{drift.pk}/fix/")
    assert response.status_code == 302 and response.url == "/hosts/changes/"
    assert words in " ".join(str(m) for m in get_messages(response.wsgi_request))

    api = client_for(world["pa"])
    response = api.post(f"/api/profiles/{profile.pk}/plan/", {"hosts": [host.pk]}, format="json")
    assert response.status_code == 400
    assert words in " ".join(response.json()["settings"])

    with pytest.raises(CommandError, match=words.replace("/", ".").replace("|", ".")) as refused:
        call_command("change", profile.name, "--user", "pa", "--apply")
    assert refused.value.returncode == 2

    assert not Change.objects.exists() and not ChangeRun.objects.exists()


def test_a_change_planned_before_the_rules_cannot_be_planned_or_applied(client, world) -> None:
    bad = {"sshd": {"Banner": "/etc/shadow"}}
    host = world["host"]
    # Created before the rules: it was never planned yet.
    waiting = Change.objects.create(
        project=world["project"], title="old", settings=bad, created_by=world["pa"]
    )
    planning.plan(waiting, [host])
    waiting.refresh_from_db()
    assert waiting.status == "failed"
    assert not ChangeRun.objects.filter(change=waiting).exists()  # no run: no SSH was tried
    assert Event.objects.filter(message__contains="Banner /etc/shadow is refused").exists()
    client.force_login(world["pa"])
    assert "its settings were refused" in client.get(f"/hosts/changes/{waiting.pk}/").content.decode()

    # Planned and approved before the rules: its runs are not queued.
    planned = Change.objects.create(
        project=world["project"], title="older", settings=bad, created_by=world["pa"], status="approved"
    )
    run = ChangeRun.objects.create(
        change=planned, host=host, files=[{"path": "/etc/ssh/sshd_config", "diff": "+Banner /etc/shadow\n"}]
    )
    client.force_login(world["pa"])
    response = client.post(f"/hosts/changes/{planned.pk}/apply/", {"confirm": "yes"}, follow=True)
    assert "Banner /etc/shadow is refused" in response.content.decode()
    planned.refresh_from_db()
    run.refresh_from_db()
    assert planned.status == "approved" and run.state == "planned"
    api = client_for(world["pa"])
    response = api.post(f"/api/changes/{planned.pk}/apply/", {"confirm": True}, format="json")
    assert response.status_code == 409 and "Banner /etc/shadow is refused" in response.json()["detail"]
    run.refresh_from_db()
    assert run.state == "planned"


def test_the_admin_is_no_way_round_the_rules(client, world) -> None:
    client.force_login(world["root"])
    profile = world["profile"]
    before = snapshot()
    response = client.post(
        f"/admin/hosts/profile/{profile.pk}/change/",
        {
            "project": world["project"].pk,
            "name": "safe",
            "description": "",
            "settings": '{"sysctl": {"kernel.core_pattern": "|/tmp/evil"}}',
            "hosts": [world["host"].pk],
        },
    )
    assert response.status_code == 200
    assert "kernel.core_pattern is never set" in " ".join(
        response.context["adminform"].form.errors["settings"]
    )
    assert snapshot() == before


def test_a_stored_root_value_never_reaches_a_new_hosts_first_boot(client, world) -> None:
    # Provisioning writes the profile's daemon.json at first boot: the same rules hold there.
    Profile.objects.filter(pk=world["profile"].pk).update(
        settings={"daemon_json": {"insecure-registries": ["0.0.0.0/0"]}}
    )
    client.force_login(world["pa"])
    response = client.post(
        "/hosts/provision/kickstart/new/",
        {"project": world["project"].pk, "name": "metal-1", "profile": world["profile"].pk},
    )
    assert response.status_code == 400
    message = " ".join(response.context["form"].errors["profile"])
    assert "Profile safe is refused: insecure registry 0.0.0.0/0 is refused" in message
    assert not ProvisionedVm.objects.exists()


def test_a_profile_made_dangerous_after_a_clone_was_queued_fails_it_cleanly(world) -> None:
    # Queued with a safe profile; the profile is changed straight in the database before the
    # clone task runs. The clone stops before vCenter is asked (no ServiceInstance is given).
    req = ProvisionRequest.objects.create(
        project=world["project"], template="vm-1", count=1, name_pattern="late-{n}", profile=world["profile"]
    )
    pvm = ProvisionedVm.objects.create(
        request=req, name="late-1", instance_id="portal-late", token_expires=tokens.expiry()
    )
    Profile.objects.filter(pk=world["profile"].pk).update(
        settings={"daemon_json": {"insecure-registries": ["0.0.0.0/0"]}}
    )
    pvm = ProvisionedVm.objects.get(pk=pvm.pk)  # as the clone task loads it
    provision.clone(pvm, None, "http://portal.test")  # type: ignore[arg-type]
    pvm.refresh_from_db()
    assert pvm.state == ProvisionedVm.State.FAILED and not pvm.moref
    assert "Profile safe is refused: insecure registry 0.0.0.0/0 is refused" in pvm.detail
    assert "nothing was cloned" in pvm.detail
    assert Event.objects.filter(
        message__contains="Provisioning late-1 failed: profile safe is refused"
    ).exists()
