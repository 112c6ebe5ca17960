"""Find across the fleet on three real engines (issue 17): the lab's TLS and plain engines and one
of this test's own, watched by the engines watcher as ``manage.py watch`` runs it. What each
engine held before the watcher started is found once its stream opens (the snapshot); a
container made or removed afterwards is found or gone by its event alone (the next snapshot is
minutes away); each person finds only their projects' containers. Checked against what the
engines hold, created and removed from outside with the docker SDK.

The lab's engines are shared by the suite: everything made here carries this test's own tag
and is removed in ``finally``."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import docker.errors
import pytest
from django.urls import reverse

from hosts.inventory import search
from portal.models import Role
from tests.hosts.conftest import trusted_host
from tests.hosts.watching import running_watcher
from tests.lab import engines
from tests.lab.common import wait_until
from tests.lab.fixtures import start

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.lab]


@pytest.fixture
def third_engine(tmp_path: Path, lab_engines: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The session's lab has two engines; a third of this test's own."""
    workdir = tmp_path / "engines"
    (engine_info,) = start(lambda: engines.up(workdir, plain=1, tls=0))
    yield engine_info
    engines.down(workdir)


def _found(user: Any, text: str) -> set[tuple[str, str]]:
    return {(row.name, row.host.name) for row in search.search(user, text).containers}


@pytest.mark.timeout(300)
def test_the_search_finds_the_right_containers_across_three_engines(
    client, make_user, people, project, other_project, tls_engine, plain_engine, third_engine, no_env_ca
) -> None:
    tag = uuid.uuid4().hex[:8]
    lab = [
        (tls_engine, trusted_host(tls_engine, project, "lab-tls")),
        (plain_engine, trusted_host(plain_engine, project, "lab-plain")),
        (third_engine, trusted_host(third_engine, other_project, "lab-third")),
    ]
    member_of_b = make_user("bob", project=other_project, role=Role.VIEWER)
    admin, viewer = people["admin"], people["viewer"]
    busybox = next(ref for ref in tls_engine["images"] if ref.startswith("lab/busybox:"))
    sdks = [engines.connect(info) for info, _ in lab]
    made: list[tuple[Any, str]] = []

    def create(sdk: Any, name: str, **labels: str) -> None:
        sdk.containers.create(
            busybox, ["true"], name=name, labels={"search.test": tag, **labels}, network_mode="none"
        )
        made.append((sdk, name))

    try:
        # Before the watcher runs: one container on each engine, the plain one's a backend.
        for sdk, (_, host) in zip(sdks, lab, strict=True):
            create(sdk, f"find-{tag}-{host.name}", tier="frontend")
        create(sdks[1], f"db-{tag}", tier="backend")
        everything = {(f"find-{tag}-{h.name}", h.name) for _, h in lab} | {(f"db-{tag}", "lab-plain")}

        with running_watcher(interval=1.0):
            wait_until(lambda: _found(admin, tag) == everything, timeout=60, what="the snapshots")
            # Each person their projects' own; a label as key=value.
            assert _found(viewer, tag) == everything - {(f"find-{tag}-lab-third", "lab-third")}
            assert _found(member_of_b, tag) == {(f"find-{tag}-lab-third", "lab-third")}
            assert _found(viewer, f"search.test={tag} tier=backend") == {(f"db-{tag}", "lab-plain")}
            # The lab's busybox image is on all three engines; a Viewer of A sees A's two.
            assert {i.host.name for i in search.search(admin, busybox).images} >= {h.name for _, h in lab}
            assert {i.host.name for i in search.search(viewer, busybox).images} == {"lab-tls", "lab-plain"}

            # After: one made, one removed, both told by their events only.
            create(sdks[2], f"late-{tag}")
            sdks[0].containers.get(f"find-{tag}-lab-tls").remove(force=True)
            now = (everything - {(f"find-{tag}-lab-tls", "lab-tls")}) | {(f"late-{tag}", "lab-third")}
            wait_until(lambda: _found(admin, tag) == now, timeout=30, what="the events")
            assert _found(member_of_b, f"late-{tag}") == {(f"late-{tag}", "lab-third")}
            assert _found(viewer, f"late-{tag}") == set()

            # The page, as the Viewer of A reads it: their hosts' containers, linked to their hosts.
            client.force_login(viewer)
            page = client.get(reverse("hosts:search"), {"q": tag}).content.decode()
            assert f'data-name="db-{tag}"' in page and f'data-name="find-{tag}-lab-plain"' in page
            assert "lab-third" not in page and f"late-{tag}" not in page
            assert reverse("hosts:host", args=[lab[1][1].pk]) in page
    finally:
        for sdk, name in made:
            with contextlib.suppress(docker.errors.NotFound):
                sdk.containers.get(name).remove(force=True)
        for sdk in sdks:
            with closing(sdk):
                pass
