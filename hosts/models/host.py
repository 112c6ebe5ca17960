"""A Photon host as the portal knows it: its Docker endpoint, its SSH access, what
trust was pinned for both, and the last status the watcher saw."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.db import models

from portal.fields import EncryptedTextField
from portal.models import Project
from portal.visible import VisibleQuerySet


class HostStatus(models.TextChoices):
    """Admiral's meanings: UNKNOWN until first seen; a first failed check makes a
    host SUSPECT (shown as degraded), three in a row OFF; DISABLED by a person."""

    UNKNOWN = "unknown", "Unknown"
    ON = "on", "On"
    SUSPECT = "suspect", "Degraded"
    OFF = "off", "Off"
    DISABLED = "disabled", "Disabled"


#: What an engine tells about its host (``/info``): written by hosts.fleet.status.apply_facts
#: only, so read-only everywhere else (admin, API).
ENGINE_FACTS = (
    "os_name",
    "os_version",
    "kernel",
    "engine_version",
    "cpus",
    "memory",
    "containers_running",
    "containers_total",
)


class Tag(models.Model):
    name = models.CharField(max_length=60, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class HostQuerySet(VisibleQuerySet["Host"]):
    view_action = "host.view"
    not_found = "No such host."


class Host(models.Model):
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="hosts")
    name = models.CharField(max_length=100)
    tags = models.ManyToManyField(Tag, blank=True, related_name="hosts")
    enabled = models.BooleanField(default=True)

    # --- Docker endpoint -------------------------------------------------------
    #: tcp://host:2376 (TLS) or ssh://user@host; tcp://host:2375 only if insecure.
    docker_url = models.CharField(max_length=300)
    #: The CA the engine's certificate must chain to (pinned when a person confirmed it).
    tls_ca = models.TextField(blank=True)
    #: SHA-256 fingerprint of the engine certificate the person confirmed.
    tls_fingerprint = models.CharField(max_length=95, blank=True)
    tls_client_cert = models.TextField(blank=True)
    tls_client_key = EncryptedTextField(blank=True, multiline=True)
    #: A plain, unauthenticated endpoint an Admin accepted; flagged everywhere.
    insecure = models.BooleanField(default=False)
    #: This host's own client CA (hosts.ca), the only one its dockerd trusts: it signed
    #: tls_client_cert and nothing else, so that certificate opens no other host. Empty when
    #: the client certificate was given by a person rather than issued by the portal.
    client_ca_cert = models.TextField(blank=True)
    client_ca_key = EncryptedTextField(blank=True, multiline=True)

    # --- SSH access (configuration changes) ------------------------------------
    address = models.CharField(max_length=255, blank=True, help_text="Host name or IP address for SSH.")
    ssh_port = models.PositiveIntegerField(default=22)
    ssh_user = models.CharField(max_length=64, blank=True, default="root")
    ssh_private_key = EncryptedTextField(blank=True, multiline=True)
    #: The host's public key line ("ssh-ed25519 AAAA..."), pinned on confirmation.
    ssh_host_key = models.TextField(blank=True)
    #: ssh_private_key was made by the portal for this host alone (not given by a person).
    ssh_key_issued = models.BooleanField(default=False)
    #: Registered by the portal's enrollment: only an Admin may point it elsewhere.
    enrolled = models.BooleanField(default=False)

    # --- What the watcher last saw ----------------------------------------------
    status = models.CharField(
        max_length=10, choices=HostStatus.choices, default=HostStatus.UNKNOWN, db_index=True
    )
    failures = models.PositiveIntegerField(default=0, help_text="Failed checks in a row.")
    last_seen = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    os_name = models.CharField(max_length=100, blank=True)
    os_version = models.CharField(max_length=50, blank=True)
    kernel = models.CharField(max_length=100, blank=True)
    engine_version = models.CharField(max_length=50, blank=True)
    cpus = models.PositiveIntegerField(null=True, blank=True)
    memory = models.BigIntegerField(null=True, blank=True, help_text="Bytes.")
    containers_running = models.PositiveIntegerField(default=0)
    containers_total = models.PositiveIntegerField(default=0)

    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = HostQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="host_name_per_project")]
        indexes = [
            models.Index(fields=["project", "status"]),
            # The fleet page's first page (ordered by name, then pk) without sorting the fleet.
            models.Index(fields=["name", "id"], name="host_name_order"),
        ]

    #: What the per-project counters (hosts.fleet.counters) count a host by.
    COUNTED_FIELDS = ("project_id", "status", "containers_running")
    #: Those fields as loaded from the database (absent on a host made in memory).
    counted_as_loaded: dict[str, Any]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def from_db(
        cls, db: str | None, field_names: Collection[str], values: Collection[Any], **kwargs: Any
    ) -> Host:
        host = super().from_db(db, field_names, values, **kwargs)
        # As loaded, so that a save can tell whether the project's counters moved (hosts.fleet.counters).
        host.counted_as_loaded = {f: host.__dict__.get(f) for f in cls.COUNTED_FIELDS if f in host.__dict__}
        return host
