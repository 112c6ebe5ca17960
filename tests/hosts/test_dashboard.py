"""The fleet dashboard: counters, search, filters, sort, pages, and a bounded number of queries."""

from __future__ import annotations

import pytest
from django.urls import reverse

from hosts.fleet import counters
from hosts.models import Host, HostStatus, Tag
from portal.models import Membership, Role

pytestmark = pytest.mark.django_db


def _hosts(project, count: int, prefix: str = "h") -> list[Host]:  # type: ignore[no-untyped-def]
    statuses = [HostStatus.ON, HostStatus.SUSPECT, HostStatus.OFF]
    made = Host.objects.bulk_create(
        [
            Host(
                project=project,
                name=f"{prefix}-{i:03d}",
                docker_url=f"tcp://10.0.0.{i % 250}:2376",
                status=statuses[i % 3],
                containers_running=1,
            )
            for i in range(count)
        ]
    )
    counters.repair()  # bulk_create sends no signal: counted as the engines watcher's repair does
    return made


def test_counters_filters_sort_and_pages(client, people, project, other_project) -> None:
    _hosts(project, 60)
    _hosts(other_project, 5, prefix="other")
    web = Tag.objects.create(name="web")
    Host.objects.get(name="h-007").tags.add(web)
    client.force_login(people["viewer"])

    page = client.get(reverse("hosts:index")).content.decode()
    assert page.count('class="host-row"') == 50 and "other-" not in page
    assert '<strong data-count="total">60</strong>' in page
    assert '<strong data-count="suspect">20</strong>' in page
    assert '<strong data-count="running">60</strong>' in page
    assert "page 1 of 2" in page

    second = client.get(reverse("hosts:index"), {"page": 2}).content.decode()
    assert second.count('class="host-row"') == 10
    only_off = client.get(reverse("hosts:index"), {"status": "off"}).content.decode()
    assert (
        only_off.count('data-status="off" data-running') == 20
        and 'data-status="on" data-running' not in only_off
    )
    assert client.get(reverse("hosts:index"), {"tag": "web"}).content.decode().count('class="host-row"') == 1
    assert client.get(reverse("hosts:index"), {"q": "h-05"}).content.decode().count('class="host-row"') == 10
    backwards = client.get(reverse("hosts:index"), {"sort": "-name"}).content.decode()
    assert backwards.index("h-059") < backwards.index("h-058")
    # Another project's hosts stay invisible even when asked for by id.
    filtered = client.get(reverse("hosts:index"), {"project": other_project.pk}).content.decode()
    assert "other-" not in filtered


@pytest.mark.parametrize("count", [5, 120])
def test_queries_do_not_grow_with_the_fleet(
    client, people, project, other_project, count, django_assert_max_num_queries
) -> None:
    for host in _hosts(project, count):
        host.tags.add(Tag.objects.get_or_create(name=f"t{host.pk % 3}")[0])
    Membership.objects.create(user=people["outsider"], project=other_project, role=Role.VIEWER)
    for user in (people["admin"], people["viewer"]):
        client.force_login(user)
        with django_assert_max_num_queries(11):
            assert client.get(reverse("hosts:index")).status_code == 200


def test_a_row_shows_what_engines_and_vcenter_said_escaped(client, people, project) -> None:
    """The rows are written in Python for speed (hosts.templatetags.fleet_tags.host_rows): each
    value an engine, a vCenter or a person supplied must still arrive as text, never as markup."""
    from hosts.models import Cluster, EsxHost, VCenter, VirtualMachine

    evil = '<img src=x onerror="alert(1)">'
    host = Host.objects.create(
        project=project,
        name=f"web{evil}",
        docker_url="tcp://10.0.0.1:2376",
        status=HostStatus.SUSPECT,
        last_error=f'refused "{evil}"',
        os_name=f"Photon {evil}",
        os_version="5.0",
        engine_version=f"24{evil}",
        cpus=4,
        memory=8 << 30,
        containers_running=2,
        containers_total=3,
        insecure=True,
    )
    host.tags.add(Tag.objects.create(name=f"tag{evil}"))
    vcenter = VCenter.objects.create(name="vc", url="https://vc.example/sdk", username="u")
    cluster = Cluster.objects.create(vcenter=vcenter, moref="c-1", name=f"cl{evil}")
    esx = EsxHost.objects.create(vcenter=vcenter, moref="h-1", name=f"esx{evil}", cluster=cluster)
    VirtualMachine.objects.create(
        vcenter=vcenter,
        moref="vm-1",
        name="vm",
        power_state="poweredOn",
        host=host,
        cluster=cluster,
        esx_host=esx,
    )
    client.force_login(people["viewer"])

    page = client.get(reverse("hosts:index")).content.decode()

    assert "<img" not in page
    escaped = "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"
    row = page[page.index(f'id="host-{host.pk}"') :]
    row = row[: row.index("</tr>")]
    for shown in (
        f"web{escaped}</a>",
        f'title="refused &quot;{escaped}&quot;"',
        f"Photon {escaped} 5.0",
        f"24{escaped}",
        f'<span class="label">tag{escaped}</span>',
        f"cl{escaped} / esx{escaped}",
        '<span class="running">2</span> / <span class="total">3</span>',
        "8.0\xa0GB",
        'data-power="poweredOn">On</span>',
        "insecure-flag",
        'class="label host-status label-warning" data-status="suspect"',
    ):
        assert shown in row, shown
