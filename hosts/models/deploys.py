"""A container someone asked to deploy on a host, and how it went."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from hosts.models.host import Host
from portal.fields import EncryptedTextField


class Deploy(models.Model):
    """One deploy, from the request to its outcome: My work's row, and what the deploy task
    reads. The task's arguments are only this row's id, because Celery arguments sit in clear
    in the broker (and its logs) and a container's environment often holds passwords; the
    environment's values, encrypted here, are cleared once the task has run (they then live
    in the container only). The audit trail keeps the record of who asked what."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCESS = "success", "Succeeded"
        ERROR = "error", "Failed"

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="deploys")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: The deploy page's live topic (its pull progress), and the audit entry's.
    token = models.CharField(max_length=64)
    #: image, name, command, ports, restart_policy, network: everything but the environment.
    spec = models.JSONField(default=dict)
    #: The environment as JSON ({"KEY": "value"}), encrypted at rest; emptied after the run.
    environment = EncryptedTextField(blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED)
    #: Why it failed, as the deploy page told it.
    outcome = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"deploy {self.spec.get('image', '')} on {self.host}"
