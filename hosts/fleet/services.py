"""What people ask of the fleet, as one function per action that the UI and the API both
call: each checks, records (audit) and queues (``hosts.fleet.tasks``), or raises
``portal.refused.Refused`` with the sentence both show."""

from __future__ import annotations

import json
from typing import Any

from hosts.fleet import deploy as deploy_work
from hosts.fleet import tasks
from hosts.models import DeployRequest, Host
from portal import audit


def request_deploy(host: Host, spec: dict[str, Any], token: str) -> DeployRequest:
    """Record and queue a deploy: the audit entry holds the full spec (the environment's
    keys, never its values), the task gets only the id of a row holding it (values encrypted)."""
    environment = {str(k): str(v) for k, v in (spec.get("environment") or {}).items()}
    kept = {name: spec.get(name) for name in deploy_work.SPEC_FIELDS}
    audit.record(
        "container.deploy",
        obj=host,
        project=host.project,
        # The token ties the request to its outcome (hosts.fleet.work.deploy_finished).
        after={**kept, "environment_keys": sorted(environment), "token": token},
    )
    deploy = DeployRequest.objects.create(
        host=host, token=token, spec=kept, environment=json.dumps(environment) if environment else ""
    )
    tasks.deploy_container.delay(deploy.pk)
    return deploy
