"""Issue 12, points 7 and 9 (deploys): the audit entry of a deploy records its full spec
(image, name, command, environment KEYS, ports, restart policy, network) and never an
environment value; the values do not travel in the Celery task's arguments (the task
gets an id and reads them, encrypted at rest, from the database). Through the real view,
against the lab's TLS engine (a real worker when REDIS_URL is set)."""

from __future__ import annotations

import json
from contextlib import closing
from typing import Any

import pytest
from django.db import connection
from django.urls import reverse

from hosts.fleet import tasks as host_tasks
from hosts.models import Deploy, Host
from portal.models import AuditEntry
from tests.hosts.conftest import trusted_host
from tests.lab import engines
from tests.lab.common import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.lab]

SECRET = "s3cret-Pa55-do-not-log"


@pytest.fixture
def p9_host(make_user, lab_engines, celery_worker_if_brokered) -> tuple[Host, Any, dict[str, Any]]:  # type: ignore[no-untyped-def]
    from portal.models import Project, Role

    project = Project.objects.create(name="team")
    tls = next(e for e in lab_engines if e["tls"])
    return trusted_host(tls, project), make_user("prov", project=project, role=Role.PROVISIONER), tls


@pytest.mark.timeout(120)
def test_the_deploy_is_audited_in_full_and_its_secrets_stay_out_of_the_task_arguments(
    client, p9_host, monkeypatch
) -> None:
    host, user, tls = p9_host
    queued: list[dict[str, Any]] = []
    original = host_tasks.deploy_container.apply_async

    def recording(args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT environment FROM {Deploy._meta.db_table}")  # noqa: S608
            stored = [row[0] for row in cursor.fetchall()]
        queued.append({"args": tuple(args or ()), "kwargs": kwargs or {}, "stored": stored})
        return original(args, kwargs, **options)

    monkeypatch.setattr(host_tasks.deploy_container, "apply_async", recording)
    client.force_login(user)
    page = client.get(reverse("hosts:deploy", args=[host.pk])).content.decode()
    token = page.split('name="token" value="', 1)[1].split('"', 1)[0]
    with closing(engines.connect(tls)) as sdk:
        image = next(t for i in sdk.images.list() for t in i.tags if "busybox" in t)
    data = {
        "image": image,
        "name": "p9-deployed",
        "command": "sh -c 'sleep 3600'",
        "environment": f"DB_PASSWORD={SECRET}\nMODE=prod",
        "restart_policy": "unless-stopped",
        "network": "none",
        "token": token,
    }
    try:
        assert "Deploying" in client.post(reverse("hosts:deploy", args=[host.pk]), data).content.decode()
        (task,) = queued
        assert task["kwargs"] == {} and len(task["args"]) == 1 and isinstance(task["args"][0], int)
        assert SECRET not in repr(task)  # nor in the row at rest: it is encrypted there
        assert task["stored"] and all(SECRET not in (raw or "") for raw in task["stored"])
        entry = AuditEntry.objects.get(action="container.deploy", after__token=token)
        assert entry.after == {
            "image": image,
            "name": "p9-deployed",
            "command": "sh -c 'sleep 3600'",
            "environment_keys": ["DB_PASSWORD", "MODE"],
            "ports": {},
            "restart_policy": "unless-stopped",
            "network": "none",
            "token": token,
        }
        assert SECRET not in json.dumps(entry.after)

        # The worker read the values: the container has them; the deploy's row no longer does.
        def env() -> list[str]:
            with closing(engines.connect(tls)) as sdk:
                found = sdk.containers.list(all=True, filters={"name": "p9-deployed"})
                return found[0].attrs["Config"]["Env"] if found else []

        wait_until(lambda: f"DB_PASSWORD={SECRET}" in env(), timeout=60, what="the deployed container")
        wait_until(
            lambda: str(Deploy.objects.get(token=token).environment or "") == "",
            timeout=30,
            what="the environment's values cleared",
        )
    finally:
        with closing(engines.connect(tls)) as sdk:
            for c in sdk.containers.list(all=True, filters={"name": "p9-deployed"}):
                c.remove(force=True)
