"""Each line of a deploy's progress is labelled with its step (Pulling, a layer's
Downloading or Extracting, Creating, Starting, Done, or Failed), never a bare "status".

The engine is stood in for (its SDK calls are hosts.fleet.containers'); what is checked is
what the deploy page receives: the HTML of each published line."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from hosts.fleet import container_rows, deploy, engine
from hosts.fleet import containers as engine_containers
from hosts.models import Host
from portal import live
from portal.models import Project

pytestmark = pytest.mark.django_db

PULL = [
    {"status": "Pulling from lab/busybox", "id": "1.35"},
    {"status": "Pulling fs layer", "id": "abc123"},
    {"status": "Downloading", "progress": "[=====>     ] 1.1MB/2.2MB", "id": "abc123"},
    {"status": "Extracting", "progress": "[==========>] 2.2MB/2.2MB", "id": "abc123"},
    {"status": "Pull complete", "id": "abc123"},
    {"status": "Digest: sha256:" + "0" * 64},
    {"status": "Status: Downloaded newer image for lab/busybox:1.35"},
]


class _Sdk:
    def close(self) -> None:
        pass


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The HTML of every line published to the deploy's topic, in order."""
    published: list[str] = []
    monkeypatch.setattr(live, "publish", lambda topic, html="", data=None: published.append(html))
    monkeypatch.setattr(engine, "client_for", lambda host, timeout=None: _Sdk())
    monkeypatch.setattr(engine_containers, "has_image", lambda sdk, image: False)
    monkeypatch.setattr(engine_containers, "create", lambda sdk, spec: "f" * 64)
    monkeypatch.setattr(engine_containers, "start_or_remove", lambda sdk, container_id: None)
    monkeypatch.setattr(container_rows, "publish_container", lambda host, container_id: None)
    return published


def _host() -> Host:
    project = Project.objects.create(name="Team A")
    return Host.objects.create(project=project, name="photon-01", docker_url="tcp://127.0.0.1:9")


def _labels(lines: list[str]) -> list[str]:
    return [re.search(r'<span class="label[^"]*">([^<]*)</span>', line).group(1) for line in lines]  # type: ignore[union-attr]


def test_every_step_of_a_deploy_has_its_label(lines: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def pull(sdk: Any, image: str, auth: Any) -> Iterator[dict[str, str]]:
        yield from PULL

    monkeypatch.setattr(engine_containers, "pull", pull)
    spec = {"image": "lab/busybox:1.35", "name": "web"}
    assert deploy.run(_host(), spec, "project:1:host:1:deploy:t0k3n-0001") == "ok"
    labels = _labels(lines)
    assert "status" not in labels
    assert labels == [
        "Pulling",  # Pulling lab/busybox:1.35
        "Pulling",  # Pulling from lab/busybox
        "Pulling fs layer",
        "Downloading",
        "Extracting",
        "Pull complete",
        "Pulling",  # Digest: ...
        "Pulling",  # Status: Downloaded newer image ...
        "Creating",
        "Starting",
        "Done",
    ]
    downloading = lines[3]
    assert "layer <code>abc123</code>" in downloading and "1.1MB/2.2MB" in downloading
    assert 'id="deploy-t0k3n-0001-layer-abc123"' in downloading  # each layer's line is replaced
    assert "Container web is running." in lines[-1] and 'data-level="success"' in lines[-1]


def test_a_failed_deploy_says_failed(lines: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def pull(sdk: Any, image: str, auth: Any) -> Iterator[dict[str, str]]:
        raise RuntimeError("manifest unknown")
        yield {}

    monkeypatch.setattr(engine_containers, "pull", pull)
    outcome = deploy.run(
        _host(), {"image": "lab/nothing:1", "name": ""}, "project:1:host:1:deploy:t0k3n-0002"
    )
    assert outcome.startswith("Image lab/nothing:1 not found")
    assert _labels(lines) == ["Pulling", "Failed"]
    assert 'data-level="danger"' in lines[-1] and "deploy-done" in lines[-1]
