"""A host's page tells its whole story (issue 17): its VM's power state and placement (live on the
VM's topic, as the VM's page follows it), its profiles and whether it still matches them, with
the repair for those who may plan changes; its engine's images, volumes and networks come after
the page is shown (tests/hosts/test_engine_objects_on_lab.py). No engine here: the host's engine
is disabled, so the page reads the database only."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from hosts.changes import drift
from hosts.models import Drift, Host, Profile, VCenter, VirtualMachine
from portal import replay

pytestmark = pytest.mark.django_db


@pytest.fixture
def host(project: Any) -> Host:
    host = Host.objects.create(
        project=project, name="photon-1", docker_url="tcp://192.0.2.1:2376", enabled=False
    )
    vcenter = VCenter.objects.create(name="vc", url="https://vc.example", username="u", password="p")
    VirtualMachine.objects.create(
        vcenter=vcenter, moref="vm-7", name="photon-1-vm<b>", host=host, power_state="poweredOn", cpus=2
    )
    VirtualMachine.objects.create(vcenter=vcenter, moref="vm-8", name="old-vm", host=host, gone=True)
    for name, state in (("hardened", "drifted"), ("base", "in_sync")):
        profile = Profile.objects.create(project=project, name=name, settings={"sshd": {"MaxAuthTries": 3}})
        Drift.objects.create(host=host, profile=profile, state=state)
    return host


def test_the_host_page_shows_its_vm_live_and_its_drift_with_the_repair(client, people, host) -> None:
    client.force_login(people["manager"])
    page = client.get(reverse("hosts:host", args=[host.pk])).content.decode()
    vm = VirtualMachine.objects.get(moref="vm-7")
    card = page[page.index(f'id="host-vm-{vm.pk}"') :].split('id="host-vm-events-')[0]
    assert f'data-live-topics="project:{host.project_id}:vm:{vm.pk}"' in card
    assert "photon-1-vm&lt;b&gt;" in card and "<b>" not in card  # vCenter's words escaped
    assert 'data-power="poweredOn"' in card and reverse("hosts:vm", args=[vm.pk]) in card
    assert "old-vm" not in page  # gone from vCenter: not the host's VM any more
    drift = page[page.index('id="host-drift"') :].split("</table>")[0]
    assert drift.index("base") < drift.index("hardened")
    repair = Drift.objects.get(profile__name="hardened")
    assert f'action="{reverse("hosts:drift_fix", args=[repair.pk])}"' in drift
    assert drift.count("Repair</button>") == 1  # only the drifted one
    assert '<code class="mono-wrap">/etc/ssh/sshd_config</code>' in drift  # the files it manages
    assert 'id="engine-objects"' not in page  # a disabled host's engine is not asked
    # The VM's power and snapshot buttons, as on its own page: on is pointless, it is on.
    assert f'hx-post="{reverse("hosts:vm_action", args=[vm.pk])}"' in card
    assert 'id="action-power_on"' in card and 'value="power_on"' in card
    assert card[card.index('id="action-power_on"') :].split(">")[0].count("disabled") == 1
    assert 'id="action-power_off"' in card and 'id="action-snapshot_create"' in card


def test_a_viewer_sees_the_state_but_no_repair(client, people, host) -> None:
    client.force_login(people["viewer"])
    page = client.get(reverse("hosts:host", args=[host.pk])).content.decode()
    assert 'id="host-drift"' in page and "Drifted" in page and "Repair</button>" not in page
    assert 'id="action-power_off"' not in page  # sees the VM's state, may not power it


def test_the_configuration_card_is_read_again_on_news_of_the_hosts_drift(client, people, host) -> None:
    """The drift check's news of this host reaches its page's topic, and the card it then reads
    again is the person's own (the repair only for those who may plan it)."""
    page = client.get(reverse("hosts:host", args=[host.pk]))
    assert page.status_code == 302  # signed out
    client.force_login(people["manager"])
    page = client.get(reverse("hosts:host", args=[host.pk])).content.decode()
    topic = drift.host_topic(host)
    assert f'data-live-topics="{topic}"' in page and "data-live-reload" in page
    start = replay.mark()
    drift.release(Drift.objects.filter(profile__name="base"))
    base = Profile.objects.get(name="base").pk
    assert [event for _, event in replay.since(topic, start) or []] == [
        {"html": "", "data": {"profile": base}}
    ]
    card = client.get(reverse("hosts:host_drift", args=[host.pk])).content.decode()
    assert "hardened" in card and "base" not in card and card.count("Repair</button>") == 1
    client.force_login(people["viewer"])
    card = client.get(reverse("hosts:host_drift", args=[host.pk])).content.decode()
    assert "hardened" in card and "Repair</button>" not in card
    client.force_login(people["outsider"])
    assert client.get(reverse("hosts:host_drift", args=[host.pk])).status_code == 404
