"""Configuration changes: profiles of desired settings, changes planned from them,
what happened on each host, the original files kept for rollback and undo, the
drift found, and the portal's own certificate authority."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from hosts.models.host import Host, Tag
from portal.fields import EncryptedTextField
from portal.models import Project

#: Read once: models below have a field named ``settings``.
USER = settings.AUTH_USER_MODEL


class Profile(models.Model):
    """A named set of desired settings, assigned to hosts or tags within a project.

    ``settings`` holds one entry per renderer (hosts.changes.files): ``sshd``,
    ``docker_api``, ``daemon_json``, ``firewall``; a missing entry is not managed.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="profiles")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    settings = models.JSONField(default=dict, blank=True)
    hosts = models.ManyToManyField(Host, blank=True, related_name="profiles")
    tags = models.ManyToManyField(Tag, blank=True, related_name="profiles")
    created_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="profile_name_per_project")]

    def __str__(self) -> str:
        return self.name


class ChangeStatus(models.TextChoices):
    PLANNING = "planning", "Planning"
    PLANNED = "planned", "Planned"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    APPLYING = "applying", "Applying"
    APPLIED = "applied", "Applied"
    PARTIAL = "partial", "Partly applied"
    FAILED = "failed", "Failed"


class Change(models.Model):
    """One plan-approve-apply run over some hosts: from a profile, or reverting an earlier change."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="changes")
    title = models.CharField(max_length=200)
    profile = models.ForeignKey(
        Profile, null=True, blank=True, on_delete=models.SET_NULL, related_name="changes"
    )
    #: The desired settings as they were when planned (the profile may change later).
    settings = models.JSONField(default=dict, blank=True)
    reverts = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reverted_by"
    )
    status = models.CharField(max_length=20, choices=ChangeStatus.choices, default=ChangeStatus.PLANNING)
    #: An Admin accepted the plain Docker port (2375) for this change.
    allow_insecure = models.BooleanField(default=False)
    created_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    approved_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    applied_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["project", "status"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    def progress(self) -> int:
        """How far applying has got, on average over its hosts (0 to 100)."""
        values = list(self.runs.values_list("progress", flat=True))
        return int(sum(values) / len(values)) if values else 0


class RunState(models.TextChoices):
    PLANNED = "planned", "Planned"
    UNCHANGED = "unchanged", "Nothing to change"
    UNREACHABLE = "unreachable", "Unreachable"
    REFUSED = "refused", "Refused"
    QUEUED = "queued", "Queued"
    APPLYING = "applying", "Applying"
    APPLIED = "applied", "Applied"
    ROLLED_BACK = "rolled_back", "Rolled back"
    FAILED = "failed", "Failed"
    INTERRUPTED = "interrupted", "Interrupted"


class ChangeRun(models.Model):
    """One host in a change: its plan (files before/after, restarts) and what applying did.

    ``files`` is ``[{"path", "before", "after", "existed", "mode", "diff"}]`` for
    the text files the plan read and rendered; private keys never go in it.
    """

    change = models.ForeignKey(Change, on_delete=models.CASCADE, related_name="runs")
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="change_runs")
    state = models.CharField(max_length=20, choices=RunState.choices, default=RunState.PLANNED)
    files = models.JSONField(default=list, blank=True)
    restarts = models.JSONField(default=list, blank=True)
    # What verifying checks from the portal's side once the files are in place.
    #: Ports the firewall must let through, as seen from the portal: [[proto, port]].
    expect_open = models.JSONField(default=list, blank=True)
    #: Ports it must drop: [[proto, port]].
    expect_closed = models.JSONField(default=list, blank=True)
    #: The SSH port a new login must work on, when the change moves it.
    expect_ssh_port = models.PositiveIntegerField(null=True, blank=True)
    #: Kernel parameters to read back as set: {key: value}.
    expect_sysctl = models.JSONField(default=dict, blank=True)
    #: The Docker remote API moves to TLS: a server certificate is issued at apply time and
    #: the new endpoint must answer the portal's client certificate.
    docker_tls = models.BooleanField(default=False)
    #: A credential rotation also replaces the host's Docker client CA (its SSH key always).
    rotate_docker = models.BooleanField(default=False)
    #: The kernel's values, before this run, of the parameters its sysctl file sets: a rollback
    #: or a revert sets them back (files alone do not unset what ``sysctl -p`` set).
    kernel_before = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True, help_text="Why it was refused, unreachable, rolled back or failed.")
    step = models.CharField(max_length=60, blank=True)
    progress = models.PositiveSmallIntegerField(default=0)
    log = models.TextField(blank=True)
    #: The Host's Docker endpoint before a Docker API change, to put back on rollback or undo.
    endpoint_before = EncryptedTextField(blank=True)
    #: A credential rotation's new keys (hosts.changes.rotation), made when planned so the diff shows
    #: the new public halves; encrypted, and cleared once the Host holds them.
    credentials = EncryptedTextField(blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["host__name"]
        constraints = [models.UniqueConstraint(fields=["change", "host"], name="one_run_per_host_per_change")]

    def __str__(self) -> str:
        return f"{self.change} on {self.host}"


class FileBackup(models.Model):
    """A host file as it was before a change first wrote it: kept (encrypted: it may
    be a private key) until the change is reverted or deleted. Byte for byte."""

    run = models.ForeignKey(ChangeRun, on_delete=models.CASCADE, related_name="backups")
    path = models.CharField(max_length=500)
    existed = models.BooleanField(default=True)
    #: base64 of the file's bytes, encrypted.
    content = EncryptedTextField(blank=True)
    mode = models.PositiveIntegerField(default=0o644)
    taken = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["path"]
        constraints = [models.UniqueConstraint(fields=["run", "path"], name="one_backup_per_file_per_run")]

    def __str__(self) -> str:
        return f"{self.path} of {self.run}"


class DriftState(models.TextChoices):
    IN_SYNC = "in_sync", "In sync"
    DRIFTED = "drifted", "Drifted"
    UNREACHABLE = "unreachable", "Unreachable"
    ERROR = "error", "Error"


class Drift(models.Model):
    """The last drift check of one host against one of its profiles."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="drift")
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="drift")
    state = models.CharField(max_length=20, choices=DriftState.choices, default=DriftState.IN_SYNC)
    diff = models.TextField(blank=True)
    checked = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["host__name", "profile__name"]
        constraints = [models.UniqueConstraint(fields=["host", "profile"], name="one_drift_per_host_profile")]

    def __str__(self) -> str:
        return f"{self.host} vs {self.profile}: {self.state}"


class CertificateAuthority(models.Model):
    """The portal's own CA (hosts.ca): signs each host's Docker server
    certificate (clients get a CA per host, kept on the Host)."""

    name = models.CharField(max_length=100, unique=True)
    cert = models.TextField()
    key = EncryptedTextField(multiline=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name
