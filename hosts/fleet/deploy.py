"""Deploy a container on a host: pull (progress per layer, live), create, start; or only pull an
image (``pull_only``: the host page's "Pull an image").

Progress goes to the deploy's own topic (the page that asked subscribed to it
before submitting); the new container reaches the host page through the event
stream and ``publish_container``. Engine errors become the sentences people
expect: image not found, name in use, port taken.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docker.errors
from django.template.loader import render_to_string

from hosts.fleet import container_rows, engine
from hosts.fleet import containers as engine_containers
from hosts.fleet import endpoint as engine_endpoint
from hosts.models import Deploy, Host
from portal import live


def _say(topic: str, step: str, message: str, *, level: str = "info", done: bool = False) -> None:
    """One line of the deploy's progress: ``step`` is its label (Pulling, Creating, Done...)."""
    html = render_to_string(
        "hosts/fleet/deploy_progress.html", {"step": step, "message": message, "level": level, "done": done}
    )
    live.publish(topic, html=html, data={"step": step, "message": message, "level": level, "done": done})


def _layer(topic: str, token: str, layer: str, status: str, detail: str) -> None:
    """A layer's line, replaced as it goes: ``status`` is the engine's word for where the
    layer is (Waiting, Downloading, Extracting, Pull complete), its label."""
    context = {"token": token, "layer": layer, "status": status, "detail": detail}
    html = render_to_string("hosts/fleet/deploy_layer.html", context)
    live.publish(topic, html=html, data={"layer": layer, "text": f"{status} {detail}".strip()})


def explain(exc: BaseException, spec: dict[str, Any], no_login: str = "") -> str:
    """``no_login``: why the portal sent the engine no login for the image's registry."""
    text = engine.describe_error(exc)
    lowered = text.lower()
    not_found = ("manifest unknown", "not found", "pull access denied", "repository does not exist")
    login_wanted: tuple[str, ...] = ("no basic auth credentials", "unauthorized", "authentication required")
    if no_login:
        # The login was withheld: "pull access denied" is then most likely that, not a typo.
        login_wanted += ("pull access denied", "access to the resource is denied")
    if any(s in lowered for s in login_wanted):
        where = registry_host(spec["image"]) or "Docker Hub"
        if no_login:
            return f"{where} refused the pull without a login. {no_login} ({text})"
        return (
            f"{where} refused the pull without a login: add that registry to the portal with its "
            f"credentials and share it with this host's project. ({text})"
        )
    image_missing = isinstance(exc, docker.errors.ImageNotFound) or any(s in lowered for s in not_found)
    if image_missing and "container" not in lowered:
        return f"Image {spec['image']} not found: {text}"
    if "already in use" in lowered or (isinstance(exc, docker.errors.APIError) and exc.status_code == 409):
        return f"The name {spec['name']!r} is already in use on this host."
    if "port is already allocated" in lowered or "address already in use" in lowered:
        return f"A published port is already taken on this host: {text}"
    return text


def registry_host(image: str) -> str:
    """The registry part of an image reference ("" for Docker Hub), as ``docker pull`` reads it."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first.lower()
    return ""


def repository_of(image: str) -> str:
    """``registry/path/name:tag`` or ``...@sha256:...`` -> ``path/name`` (the token scope's name)."""
    rest = image.split("/", 1)[1] if registry_host(image) else image
    rest = rest.split("@", 1)[0]
    path, _, last = rest.rpartition("/")
    last = last.split(":", 1)[0]
    return f"{path}/{last}" if path else last


def unverified_engine(host: Host) -> str:
    """Why ``host``'s engine must not receive a registry login ("" when it may): a login
    goes only where the portal knows who answers (a pinned TLS certificate, or a pinned
    SSH host key), never over plain TCP nor to an engine nobody has confirmed."""
    scheme = host.docker_url.split("://", 1)[0].lower()
    if host.insecure or (scheme == "tcp" and not host.tls_fingerprint):
        return f"the engine of {host.name} is not reached over TLS with a pinned certificate"
    if scheme == "ssh" and not host.ssh_host_key:
        return f"the SSH host key of {host.name} is not pinned"
    if scheme not in {"tcp", "ssh"}:
        return f"the engine of {host.name} is not a verified endpoint"
    return ""


@dataclass(frozen=True)
class PullLogin:
    """What the engine gets for a pull (``auth``: its X-Registry-Auth), and, when a
    registry of the portal wanted a login that is not sent, why (told to the person)."""

    auth: dict[str, str] | None = None
    withheld: str = ""


#: Who knows the logins of registries: the registry app registers its lookup
#: (``registry.pull.login_for``) in its ready(), so the fleet never imports it (registry
#: builds on hosts, not the reverse). A source answers None for an image it does not hold.
LoginSource = Callable[[Host, str], "PullLogin | None"]
PULL_LOGINS: list[LoginSource] = []


def pull_credentials(host: Host, image: str) -> PullLogin:
    """What the engine of ``host`` gets to pull ``image``: the first registered source's
    answer, or nothing (an anonymous pull)."""
    for source in PULL_LOGINS:
        found = source(host, image)
        if found is not None:
            return found
    return PullLogin()


#: What of a deploy's spec the task gets through the database rather than the broker.
SPEC_FIELDS = ("image", "name", "command", "ports", "restart_policy", "network", "pull_only")


def spec_of(deploy: Deploy) -> dict[str, Any]:
    """The spec ``run`` takes, environment values decrypted (in the worker only)."""
    raw = str(deploy.environment or "")
    return {**deploy.spec, "environment": json.loads(raw) if raw else {}}


def run(host: Host, spec: dict[str, Any], topic: str) -> str:
    token = topic.rsplit(":", 1)[-1]
    image = spec["image"]
    login = PullLogin()
    try:
        sdk = engine.client_for(host, timeout=60)
    except engine_endpoint.EngineError as exc:
        _say(topic, "Failed", str(exc), level="danger", done=True)
        return str(exc)
    try:
        # A pull alone always asks the registry: the tag may name a newer image now.
        if not spec.get("pull_only") and engine_containers.has_image(sdk, image):
            _say(topic, "Image", f"Image {image} is already on the host.")
        else:
            _say(topic, "Pulling", f"Pulling {image}")
            login = pull_credentials(host, image)
            if login.withheld:
                _say(topic, "No login", login.withheld, level="warning")
            for event in engine_containers.pull(sdk, image, login.auth):
                status = str(event.get("status") or "")
                # The first line names the tag pulled, with the tag as its "id": not a layer.
                if event.get("id") and status and not status.startswith("Pulling from"):
                    _layer(topic, token, event["id"], status, event.get("progress") or "")
                elif status:
                    _say(topic, "Pulling", status)
        if spec.get("pull_only"):
            _say(topic, "Done", f"Image {image} is on {host.name}.", level="success", done=True)
            return "ok"
        _say(topic, "Creating", "Creating the container")
        container_id = engine_containers.create(sdk, spec)
        _say(topic, "Starting", f"Starting {container_id[:12]}")
        engine_containers.start_or_remove(sdk, container_id)
        _say(
            topic,
            "Done",
            f"Container {spec.get('name') or container_id[:12]} is running.",
            level="success",
            done=True,
        )
    except Exception as exc:  # noqa: BLE001 - every failure is told to the person deploying
        message = explain(exc, spec, login.withheld)
        _say(topic, "Failed", message, level="danger", done=True)
        return message
    finally:
        sdk.close()
    container_rows.publish_container(host, container_id)
    return "ok"
