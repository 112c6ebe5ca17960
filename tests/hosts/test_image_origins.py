"""Where a host's images came from, the rules without an engine (issue 17): only registries shared
with the host's project are asked, and one that cannot be reached is left alone for a minute
instead of holding every host page on its timeouts. The lab test (test_image_origins_on_lab.py)
covers the real registries: the link, the "newer in registry" marker, Harbor's scan."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator

import pytest

from hosts.engine_objects import origins
from hosts.engine_objects.reading import Image
from hosts.models import Host
from registry.models import Registry

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def own_cache(settings) -> None:  # type: ignore[no-untyped-def]
    settings.REGISTRY_CACHE_NAMESPACE = f"test-{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def slammer() -> Iterator[tuple[int, list[int]]]:
    """A port that accepts and at once closes every connection, counting them."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(1)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1], accepted
    server.close()


def test_a_registry_that_cannot_be_reached_is_asked_once_a_minute(project, other_project, slammer) -> None:  # type: ignore[no-untyped-def]
    port, accepted = slammer
    host = Host.objects.create(project=project, name="h", docker_url="tcp://127.0.0.1:9", insecure=True)
    image = Image(id="sha256:" + "a" * 64, tags=[f"127.0.0.1:{port}/team/app:1"], size=1, created=0)

    # Not shared with the host's project: never asked.
    Registry.objects.create(name="theirs", url=f"http://127.0.0.1:{port}").projects.set([other_project])
    assert origins.origins(host, [image]) == {}
    assert accepted == []

    Registry.objects.create(name="ours", url=f"http://127.0.0.1:{port}").projects.set([project])
    first = origins.origins(host, [image])[image.id]
    assert [(o.registry, bool(o.error), o.url) for o in first] == [("ours", True, "")]
    asked = len(accepted)
    assert asked >= 1
    second = origins.origins(host, [image])[image.id]
    assert [o.error for o in second] == [o.error for o in first]
    assert len(accepted) == asked  # the memo answered, the registry was not asked again
