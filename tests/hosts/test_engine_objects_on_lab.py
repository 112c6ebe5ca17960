"""A host's images, volumes and networks on a lab engine (issue 17), through the pages as a
Provisioner (and a Project admin) uses them, checked from outside with the docker SDK: create with
options, labels, subnet and gateway; tag an image; what a container uses cannot be removed (the
container named), but a Project admin may force an image from under a stopped one; a prune's
confirmation lists what is unused with its size, and the prune removes those of them still
unused, and says what it freed.

The lab's engines are shared by the whole suite: the prune posts only this test's own objects
(the rule removes the listed ones, so the result is the same as posting the whole list), and
everything made here is removed in ``finally``."""

from __future__ import annotations

import contextlib
import uuid
from contextlib import closing
from typing import Any

import docker.errors
import pytest
from django.urls import reverse

from hosts.models import Application
from portal.models import AuditEntry
from tests.hosts.conftest import trusted_host
from tests.lab import engines

pytestmark = pytest.mark.lab


def _follow(client: Any, url: str, data: dict[str, Any]) -> str:
    return client.post(url, data, follow=True).content.decode()


@pytest.mark.timeout(180)
def test_volumes_and_networks_made_refused_and_pruned_through_the_pages(
    client, people, project, tls_engine
) -> None:
    host = trusted_host(tls_engine, project, "photon-objects")
    tag = uuid.uuid4().hex[:8]
    data, spare, busy = f"data-{tag}", f"spare-{tag}", f"busy-{tag}"
    net, spare_net = f"net-{tag}", f"spare-net-{tag}"
    busybox = next(ref for ref in tls_engine["images"] if ref.startswith("lab/busybox:"))
    client.force_login(people["provisioner"])
    with closing(engines.connect(tls_engine)) as sdk:
        try:
            # A tmpfs volume with labels, as the form takes them; what the engine holds, from outside.
            page = _follow(
                client,
                reverse("hosts:volume_new", args=[host.pk]),
                {
                    "name": data,
                    "options": "type=tmpfs\ndevice=tmpfs\no=size=16m",
                    "labels": "team=a\nnote=<b>x</b>",
                },
            )
            assert f"Volume {data} created on photon-objects." in page
            made = sdk.api.inspect_volume(data)
            assert made["Labels"] == {"team": "a", "note": "<b>x</b>"}
            assert made["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=16m"}
            entry = AuditEntry.objects.get(action="volume.create")
            assert entry.after["type"] == "tmpfs" and "size=16m" not in str(
                entry.after
            )  # o= may hold a password
            # The host's own root, as a volume: refused, nothing made.
            refused = client.post(
                reverse("hosts:volume_new", args=[host.pk]),
                {"name": f"root-{tag}", "options": "type=none\no=bind\ndevice=/"},
            ).content.decode()
            assert "would give its containers the host" in refused
            with pytest.raises(docker.errors.NotFound):
                sdk.api.inspect_volume(f"root-{tag}")
            # Same name again: said, not silently handed the existing one.
            again = client.post(reverse("hosts:volume_new", args=[host.pk]), {"name": data}).content.decode()
            assert f"has a volume named {data} already" in again

            # A network with its subnet and gateway.
            page = _follow(
                client,
                reverse("hosts:network_new", args=[host.pk]),
                {
                    "name": net,
                    "driver": "bridge",
                    "subnet": "172.31.251.0/24",
                    "gateway": "172.31.251.1",
                    "labels": "team=a",
                },
            )
            assert f"Network {net} created on photon-objects." in page
            ipam = sdk.api.inspect_network(net)["IPAM"]["Config"]
            assert ipam == [{"Subnet": "172.31.251.0/24", "Gateway": "172.31.251.1"}]

            # A container (started from outside the portal) uses both.
            user = sdk.containers.run(
                busybox, ["sleep", "300"], name=f"user-{tag}", detach=True, network=net,
                volumes={data: {"bind": "/data", "mode": "rw"}},
            )  # fmt: skip
            section = client.get(reverse("hosts:engine_objects", args=[host.pk])).content.decode()
            row = section[section.index(f'<code class="mono-wrap">{data}</code>') :].split("</tr>")[0]
            assert f"user-{tag}" in row and "note=&lt;b&gt;x&lt;/b&gt;" in row  # the engine's words escaped
            assert "172.31.251.0/24" in section and "via 172.31.251.1" in section
            said = _follow(client, reverse("hosts:volume_remove", args=[host.pk, data]), {})
            assert f"volume {data} is in use by user-{tag}" in said
            net_id = sdk.api.inspect_network(net)["Id"]
            said = _follow(client, reverse("hosts:network_remove", args=[host.pk, net_id]), {})
            assert f"network {net} is in use by user-{tag}" in said
            sdk.api.inspect_volume(data)
            sdk.api.inspect_network(net)
            assert not AuditEntry.objects.filter(action__in=["volume.remove", "network.remove"]).exists()

            # Unused ones to prune: one holding a megabyte, one taken by a container after the
            # confirmation was shown, an unused network. A volume of an application is not offered.
            sdk.containers.run(
                busybox, ["sh", "-c", "head -c 1048576 /dev/zero > /v/blob"], remove=True,
                volumes={spare: {"bind": "/v", "mode": "rw"}},
            )  # fmt: skip
            sdk.api.create_volume(busy)
            sdk.api.create_network(spare_net)
            Application.objects.create(
                project=project, name=f"app{tag}", source="services: {}\n", state="running"
            )
            sdk.api.create_volume(f"app{tag}_db", labels={"com.docker.compose.project": f"app{tag}"})
            confirm = client.get(reverse("hosts:volumes_prune", args=[host.pk])).content.decode()
            listed = confirm[confirm.index('id="prune-list"') : confirm.index('id="confirm-prune"')]
            assert spare in listed and busy in listed and "1.0\xa0MB" in listed
            assert data not in listed and f"app{tag}_db" not in listed
            taker = sdk.containers.run(
                busybox,
                ["sleep", "300"],
                name=f"taker-{tag}",
                detach=True,
                volumes={busy: {"bind": "/b", "mode": "rw"}},
            )
            page = _follow(client, reverse("hosts:volumes_prune", args=[host.pk]), {"item": [spare, busy]})
            assert "1 unused volume removed from photon-objects, 1.0\xa0MB freed." in page
            assert f"Kept: {busy}: in use" in page
            with pytest.raises(docker.errors.NotFound):
                sdk.api.inspect_volume(spare)
            sdk.api.inspect_volume(busy)  # taken since the confirmation: kept
            entry = AuditEntry.objects.get(action="volume.prune", actor=people["provisioner"])
            assert entry.after["removed"] == [spare] and 1048576 <= entry.after["freed"] < 1100000

            spare_id = sdk.api.inspect_network(spare_net)["Id"]
            confirm = client.get(reverse("hosts:networks_prune", args=[host.pk])).content.decode()
            assert spare_net in confirm and f">{net}<" not in confirm and ">bridge<" not in confirm
            page = _follow(client, reverse("hosts:networks_prune", args=[host.pk]), {"item": [spare_id]})
            assert "1 unused network removed" in page
            with pytest.raises(docker.errors.NotFound):
                sdk.api.inspect_network(spare_net)

            # Once the user is gone, the volume and the network go on request.
            user.remove(force=True)
            taker.remove(force=True)
            assert f"Volume {data} removed" in _follow(
                client, reverse("hosts:volume_remove", args=[host.pk, data]), {}
            )
            assert f"Network {net} removed" in _follow(
                client, reverse("hosts:network_remove", args=[host.pk, net_id]), {}
            )
            with pytest.raises(docker.errors.NotFound):
                sdk.api.inspect_volume(data)
            assert {"volume.create", "network.create", "volume.remove", "network.remove"} <= set(
                AuditEntry.objects.values_list("action", flat=True)
            )
        finally:
            for name in (f"user-{tag}", f"taker-{tag}"):
                with contextlib.suppress(docker.errors.APIError):
                    sdk.api.remove_container(name, force=True)
            for volume in (data, spare, busy, f"app{tag}_db", f"root-{tag}"):
                with contextlib.suppress(docker.errors.APIError):
                    sdk.api.remove_volume(volume)
            for network in (net, spare_net):
                with contextlib.suppress(docker.errors.APIError):
                    sdk.api.remove_network(network)


def _image(sdk: Any, busybox: str, repository: str, megabytes: int = 0) -> str:
    """A new image on the engine (busybox with ``megabytes`` of its own), tagged repository:1."""
    command = f"head -c {megabytes * 1048576} /dev/urandom > /blob" if megabytes else "true"
    made = sdk.containers.create(busybox, ["sh", "-c", command])
    try:
        made.start()
        made.wait(timeout=60)
        return str(made.commit(repository=repository, tag="1").id)
    finally:
        made.remove(force=True)


@pytest.mark.timeout(180)
def test_images_tagged_refused_forced_and_pruned_through_the_pages(
    client, people, project, tls_engine
) -> None:
    host = trusted_host(tls_engine, project, "photon-images")
    tag = uuid.uuid4().hex[:8]
    busybox = next(ref for ref in tls_engine["images"] if ref.startswith("lab/busybox:"))
    repository = f"scratch/img{tag}"
    with closing(engines.connect(tls_engine)) as sdk:
        try:
            used = _image(sdk, busybox, f"{repository}-used")
            spare = _image(sdk, busybox, f"{repository}-spare", megabytes=1)
            client.force_login(people["provisioner"])
            # Tag it: the engine has the new name for the same image.
            page = _follow(
                client,
                reverse("hosts:image_tag", args=[host.pk, spare]),
                {"reference": f"{repository}-copy:2"},
            )
            assert f"tagged {repository}-copy:2 on photon-images" in page
            assert sdk.images.get(f"{repository}-copy:2").id == spare
            section = client.get(reverse("hosts:engine_objects", args=[host.pk])).content.decode()
            assert f"{repository}-copy:2" in section and f"{repository}-spare:1" in section

            # In use by a stopped container: refused to a Provisioner, the container named.
            sdk.containers.create(used, ["true"], name=f"stopped-{tag}")
            confirm = client.get(reverse("hosts:image_remove", args=[host.pk, used])).content.decode()
            assert f"In use by stopped-{tag}" in confirm and 'name="force"' not in confirm
            said = _follow(client, reverse("hosts:image_remove", args=[host.pk, used]), {"force": "on"})
            assert sdk.images.get(used)  # the forced removal was refused (403): the image stays
            said = _follow(client, reverse("hosts:image_remove", args=[host.pk, used]), {})
            assert f"is used by stopped-{tag}" in said
            sdk.images.get(used)
            # A Project admin may force it: the stopped container loses its image.
            client.force_login(people["manager"])
            confirm = client.get(reverse("hosts:image_remove", args=[host.pk, used])).content.decode()
            assert 'name="force"' in confirm
            said = _follow(client, reverse("hosts:image_remove", args=[host.pk, used]), {"force": "on"})
            assert f"Image {repository}-used:1 removed from photon-images." in said
            with pytest.raises(docker.errors.ImageNotFound):
                sdk.images.get(f"{repository}-used:1")
            entry = AuditEntry.objects.get(action="image.remove")
            assert entry.after == {"forced": True} and entry.before["used_by"] == [f"stopped-{tag}"]

            # Prune: the confirmation lists the unused image (both its tags) and its size; the prune
            # removes it, and says what the engine freed.
            client.force_login(people["provisioner"])
            confirm = client.get(reverse("hosts:images_prune", args=[host.pk])).content.decode()
            listed = confirm[confirm.index('id="prune-list"') : confirm.index('id="confirm-prune"')]
            assert f"{repository}-spare:1" in listed and f"{repository}-copy:2" in listed
            assert busybox not in listed  # the lab's containers use it
            page = _follow(client, reverse("hosts:images_prune", args=[host.pk]), {"item": [spare]})
            assert "1 unused image removed from photon-images, 1.0\xa0MB freed." in page
            with pytest.raises(docker.errors.ImageNotFound):
                sdk.images.get(spare)
            entry = AuditEntry.objects.get(action="image.prune")
            assert 1048576 <= entry.after["freed"] < 1100000
        finally:
            with contextlib.suppress(docker.errors.APIError):
                sdk.api.remove_container(f"stopped-{tag}", force=True)
            for name in ("used:1", "spare:1", "copy:2"):
                with contextlib.suppress(docker.errors.APIError):
                    sdk.api.remove_image(f"{repository}-{name}", force=True)
