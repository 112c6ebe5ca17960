"""Provisioning new Photon hosts: requests to clone VMs from a template, the VMs
they make (each with its one-time enrollment token), and per-project quotas."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from hosts.models.changes import Profile
from hosts.models.host import Host
from hosts.models.vsphere import VCenter
from portal.fields import EncryptedTextField
from portal.models import Project


class ProvisionQuota(models.Model):
    """What a project may hold of provisioned VMs; no row means no provisioning."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="provision_quota")
    max_vms = models.PositiveIntegerField(default=10)
    max_cpus = models.PositiveIntegerField(default=40)
    max_memory_mb = models.PositiveIntegerField(default=81920)
    #: Where the project may clone: none means no template provisioning (kickstart still works).
    vcenters = models.ManyToManyField(
        VCenter, blank=True, related_name="+", help_text="The vCenters this project may clone new hosts in."
    )
    #: VMs not marked as templates in vSphere that this project may still clone (never a
    #: VM linked to a host: provisioning refuses those whatever this lists).
    templates = models.ManyToManyField(
        "hosts.VirtualMachine",
        blank=True,
        related_name="+",
        help_text="VMs this project may clone besides those marked as templates in vSphere.",
    )

    def __str__(self) -> str:
        return f"quota of {self.project}"


class ProvisionRequest(models.Model):
    """What someone asked for; how it goes is its VMs' states (hosts.provision.summary)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="provision_requests")
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: Empty for a kickstart install (bare metal, or a VM booted from Photon's ISO).
    vcenter = models.ForeignKey(VCenter, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    template = models.CharField(max_length=255, blank=True, help_text="Template VM managed object id.")
    template_name = models.CharField(max_length=255, blank=True)
    resource_pool = models.CharField(max_length=255, blank=True)
    datastore = models.CharField(max_length=255, blank=True)
    folder = models.CharField(max_length=255, blank=True)
    network = models.CharField(max_length=255, blank=True)
    #: The names of the chosen datacenter, pool, folder, network and datastore, as shown when asked.
    placement = models.JSONField(default=dict, blank=True)
    cpus = models.PositiveIntegerField(default=2)
    memory_mb = models.PositiveIntegerField(default=2048)
    count = models.PositiveIntegerField(default=1)
    #: "web-{n}" (n counts from 1) makes web-1, web-2, ...
    name_pattern = models.CharField(max_length=100)
    profile = models.ForeignKey(Profile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.name_pattern} x{self.count}"


class ProvisionedVm(models.Model):
    """One VM of a request: its progress, and the enrollment token bound to it."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        CLONING = "cloning", "Cloning"
        POWERING_ON = "powering_on", "Powering on"
        WAITING = "waiting", "Waiting for enrollment"
        ENROLLED = "enrolled", "Enrolled"
        FAILED = "failed", "Failed"
        #: Stopped by a person before it enrolled: its token no longer works.
        CANCELLED = "cancelled", "Cancelled"

    request = models.ForeignKey(ProvisionRequest, on_delete=models.CASCADE, related_name="vms")
    name = models.CharField(max_length=100)
    #: cloud-init's instance-id, also what the phone-home must carry back.
    instance_id = models.CharField(max_length=64, unique=True)
    moref = models.CharField(max_length=255, blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED)
    detail = models.TextField(blank=True)
    #: When it began to wait for its phone-home (the request page shows how long it has waited).
    waiting_since = models.DateTimeField(null=True, blank=True)
    #: SHA-256 of the one-time token; the token itself exists only in the VM's guestinfo.
    token_hash = models.CharField(max_length=64, unique=True)
    token_expires = models.DateTimeField()
    token_used = models.DateTimeField(null=True, blank=True)
    #: SHA-256 of the one-time kickstart URL's token (kickstart installs only).
    kickstart_hash = models.CharField(max_length=64, blank=True, db_index=True)
    kickstart_used = models.DateTimeField(null=True, blank=True)
    #: Fingerprint of the Docker server certificate issued for this VM (pinned on enrollment).
    tls_fingerprint = models.CharField(max_length=95, blank=True)
    #: The credentials made for this VM alone when it was seeded (its client CA, which its
    #: dockerd trusts, and the SSH key its root trusts); moved to its Host at enrollment.
    client_ca_cert = models.TextField(blank=True)
    client_ca_key = EncryptedTextField(blank=True, multiline=True)
    ssh_private_key = EncryptedTextField(blank=True, multiline=True)
    host = models.ForeignKey(Host, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    #: Enrolled, but its guestinfo in vCenter still holds the keys it was seeded with: the
    #: task that clears them has not succeeded yet (hosts.provision.flow retries it).
    guestinfo_to_clear = models.BooleanField(default=False)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "provisioned VM"

    def __str__(self) -> str:
        return self.name
