"""A deploy someone asked for, kept until its task has run it."""

from __future__ import annotations

from django.db import models

from hosts.models.host import Host
from portal.fields import EncryptedTextField


class DeployRequest(models.Model):
    """What the deploy task needs, read by the worker from here: the task's arguments are
    only this row's id, because Celery arguments sit in clear in the broker (and its logs)
    and a container's environment often holds passwords. Removed once the task has run."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="+")
    #: Ties the request to its page's live topic and to its outcome in the audit trail.
    token = models.CharField(max_length=64)
    #: image, name, command, ports, restart_policy, network: everything but the environment.
    spec = models.JSONField(default=dict)
    #: The environment as JSON ({"KEY": "value"}), encrypted at rest.
    environment = EncryptedTextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"deploy {self.spec.get('image', '')} on {self.host_id}"
