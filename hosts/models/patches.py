"""Patch status (hosts.patches): each repository's metadata cached once for every host using
it, each host's installed packages and what applies to it, and its pending advisories and CVEs
as rows the fleet page's "exposed to CVE-…" filter finds through an index on any database."""

from __future__ import annotations

import json
import re
import zlib
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from hosts.models.host import Host
from portal.models import Project

#: A CVE id as MITRE assigns them: the year, then four or more digits.
CVE_ID = re.compile(r"CVE-\d{4}-\d{4,19}")
#: updateinfo.xml's severities of a security advisory, most severe first (Photon's words).
SEVERITIES = ("Critical", "Important", "Moderate", "Low")


def cve_id(text: str) -> str | None:
    """``text`` as a CVE id (case and surrounding blanks forgiven), or None when it is not one."""
    candidate = text.strip().upper()
    return candidate if CVE_ID.fullmatch(candidate) else None


class RepoCache(models.Model):
    """One repository's metadata as the portal last read and checked it (hosts.patches.repodata),
    shared by every host whose enabled repositories include its URL.

    The metadata is kept in the database, zlib-compressed JSON, rather than a file under the
    portal's data directory: the workers and watch shards that refresh hosts may run on other
    machines than the one that read the repository, and only the database is shared by all of
    them. Compressed, because it is read whole and never queried: Photon's updates repository
    is tens of thousands of packages and thousands of advisories, megabytes of JSON that
    compress about ten times. It is loaded only by a refresh (never by pages: ``defer``)."""

    #: The repository's base URL, with its trailing slash (repodata/ is below it).
    url = models.CharField(max_length=1000, unique=True)
    revision = models.CharField(max_length=100, blank=True)
    #: sha256 of the repomd.xml the metadata came from: the same again means nothing to download.
    repomd_sha256 = models.CharField(max_length=64, blank=True)
    #: When the metadata was last downloaded (the repomd.xml changed).
    fetched_at = models.DateTimeField(null=True, blank=True)
    #: When repomd.xml was last read, changed or not.
    checked_at = models.DateTimeField(null=True, blank=True)
    #: hosts.patches.records.RepoMetadata.to_json(), zlib-compressed; empty until first read.
    metadata = models.BinaryField(blank=True, default=b"")
    packages = models.PositiveIntegerField(default=0)
    advisories = models.PositiveIntegerField(default=0)
    #: The last read's error; the metadata stays what it was when last good.
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["url"]

    def __str__(self) -> str:
        return self.url

    def metadata_json(self) -> dict[str, Any] | None:
        if not self.metadata:
            return None
        loaded: dict[str, Any] = json.loads(zlib.decompress(bytes(self.metadata)))
        return loaded

    def set_metadata_json(self, data: dict[str, Any]) -> None:
        self.metadata = zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 6)
        self.revision = str(data.get("revision", ""))[:100]
        self.repomd_sha256 = str(data.get("repomd_sha256", ""))[:64]
        self.packages = len(data.get("packages", ()))
        self.advisories = len(data.get("advisories", ()))


class HostPatchStatus(models.Model):
    """A host's last good patch status, written whole by one refresh (hosts.patches.status), and
    the error of the last refresh when it failed (the status stays the last good one)."""

    host = models.OneToOneField(Host, on_delete=models.CASCADE, primary_key=True, related_name="patch_status")
    #: [[name, epoch, version, release, arch], ...] as rpm -qa listed them.
    installed = models.JSONField(default=list)
    #: The host's repositories as its .repo files say: [{id, name, baseurl, enabled, file}, ...].
    repositories = models.JSONField(default=list)
    #: Pending updates: [{installed: nevra, available: nevra, repo: url}, ...].
    updates = models.JSONField(default=list)
    releasever = models.CharField(max_length=20, blank=True)
    basearch = models.CharField(max_length=20, blank=True)
    #: When the status shown was read (the last good refresh); None until the first.
    read_at = models.DateTimeField(null=True, blank=True)
    #: When a refresh last ran, good or not.
    tried_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # Pending security advisories by severity (SEVERITIES; "" counts as other).
    critical = models.PositiveIntegerField(default=0)
    important = models.PositiveIntegerField(default=0)
    moderate = models.PositiveIntegerField(default=0)
    low = models.PositiveIntegerField(default=0)
    security_other = models.PositiveIntegerField(default=0)
    #: Pending advisories of any type, and packages with a newer version in a repository.
    advisories = models.PositiveIntegerField(default=0)
    pending_updates = models.PositiveIntegerField(default=0)
    reboot_suggested = models.BooleanField(default=False)

    #: What the fleet page's row reads (hosts.fleet.rows): never the package lists.
    ROW_FIELDS = (
        "host",
        "read_at",
        "last_error",
        "critical",
        "important",
        "moderate",
        "low",
        "security_other",
        "advisories",
        "pending_updates",
        "reboot_suggested",
    )

    def __str__(self) -> str:
        return f"patch status of host {self.host_id}"

    @property
    def security(self) -> int:
        return self.critical + self.important + self.moderate + self.low + self.security_other

    def by_severity(self) -> list[tuple[str, int]]:
        """(severity, count) of pending security advisories, most severe first, zeros left out."""
        counts = zip(SEVERITIES, (self.critical, self.important, self.moderate, self.low), strict=True)
        found = [(name, count) for name, count in counts if count]
        return [*found, ("Unrated", self.security_other)] if self.security_other else found


class PendingAdvisory(models.Model):
    """An advisory that applies to a host, as of its last good refresh (replaced whole each time)."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="pending_advisories")
    advisory = models.CharField(max_length=100)
    type = models.CharField(max_length=20)
    severity = models.CharField(max_length=20, blank=True)
    title = models.CharField(max_length=300, blank=True)
    issued = models.CharField(max_length=40, blank=True)
    cves = models.JSONField(default=list)
    #: [{name, arch, from, to}]: the installed version and the fixed one.
    packages = models.JSONField(default=list)
    reboot_suggested = models.BooleanField(default=False)

    class Meta:
        ordering = ["host", "advisory"]
        constraints = [models.UniqueConstraint(fields=["host", "advisory"], name="pending_advisory_per_host")]

    def __str__(self) -> str:
        return f"{self.advisory} on host {self.host_id}"


class PendingCve(models.Model):
    """A CVE a host is exposed to: one of its pending advisories fixes it. Indexed by CVE first,
    so "hosts exposed to CVE-…" is an index range on SQLite and PostgreSQL alike (a JSON
    containment query would need a GIN index, PostgreSQL only)."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="pending_cves")
    cve = models.CharField(max_length=40)
    advisory = models.CharField(max_length=100)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cve", "host", "advisory"], name="pending_cve_per_host"),
        ]

    def __str__(self) -> str:
        return f"{self.cve} on host {self.host_id}"


# ---------------------------------------------------------------- patching as a change (issue 19)

#: Read once: the user model the change's people point to.
USER = settings.AUTH_USER_MODEL
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class MaintenanceWindow(models.Model):
    """When a project's hosts may be patched: a weekday (or every day) and a start in UTC,
    for ``duration_minutes``. A project without windows may be patched at any time
    (hosts.patches.windows reads them)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="maintenance_windows")
    #: 0 = Monday .. 6 = Sunday (datetime.weekday()); None: every day.
    weekday = models.PositiveSmallIntegerField(null=True, blank=True, validators=[MaxValueValidator(6)])
    #: UTC: a fleet spans time zones, the window must mean one moment for all of it.
    start = models.TimeField()
    duration_minutes = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(1440)])
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "weekday", "start"]

    def __str__(self) -> str:
        day = "every day" if self.weekday is None else WEEKDAYS[self.weekday]
        return f"{day} {self.start:%H:%M} UTC for {self.duration_minutes} min"


class PatchChangeStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    APPROVED = "approved", "Approved"
    SCHEDULED = "scheduled", "Scheduled"
    APPLYING = "applying", "Applying"
    PAUSED = "paused", "Paused"
    APPLIED = "applied", "Applied"
    PARTIAL = "partial", "Partly applied"
    FAILED = "failed", "Failed"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


class PatchChange(models.Model):
    """Updates planned for some hosts of a project, approved, then applied batch by batch
    (hosts.patches.changes); each host's part is a PatchRun."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="patch_changes")
    title = models.CharField(max_length=200)
    #: hosts.patches.plan.Selection.to_json()
    selection = models.JSONField(default=dict)
    batch_size = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    pause_on_failure = models.BooleanField(default=True)
    #: How long a VM's snapshot is kept after its host applied (a revert stays possible).
    success_window_hours = models.PositiveIntegerField(default=24)
    status = models.CharField(
        max_length=20, choices=PatchChangeStatus.choices, default=PatchChangeStatus.PLANNED, db_index=True
    )
    created_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    approved_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    applied_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    #: A scheduled change's start: the next opening of the project's maintenance windows.
    not_before = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["project", "status"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"


class PatchRunState(models.TextChoices):
    PLANNED = "planned", "Planned"
    NOTHING = "nothing", "Nothing to apply"
    WAITING = "waiting", "Waiting for its batch"
    QUEUED = "queued", "Queued"
    APPLYING = "applying", "Applying"
    APPLIED = "applied", "Applied"
    ROLLED_BACK = "rolled_back", "Rolled back"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class SnapshotState(models.TextChoices):
    NONE = "", "No snapshot"
    TAKEN = "taken", "Taken"
    REMOVED = "removed", "Removed"
    REVERTED = "reverted", "Reverted to"
    FAILED = "failed", "Failed"


class PatchRun(models.Model):
    """One host's part of a patch change: its plan, its batch, how applying it went, and the
    VM snapshot taken before (a vSphere VM only)."""

    change = models.ForeignKey(PatchChange, on_delete=models.CASCADE, related_name="runs")
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="patch_runs")
    #: 1, 2, ...: the order hosts are patched in; 0 for a host with nothing to apply.
    batch = models.PositiveSmallIntegerField(default=0)
    #: hosts.patches.plan.HostPatchPlan.to_json()
    plan = models.JSONField(default=dict)
    state = models.CharField(max_length=20, choices=PatchRunState.choices, default=PatchRunState.PLANNED)
    step = models.CharField(max_length=60, blank=True)
    progress = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(100)])
    #: hosts.patches.apply.ApplyResult.to_json() once the engine ended.
    result = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)
    snapshot_moref = models.CharField(max_length=80, blank=True)
    snapshot_name = models.CharField(max_length=80, blank=True)
    snapshot_state = models.CharField(max_length=10, choices=SnapshotState.choices, blank=True, default="")
    #: When the watcher deletes the snapshot of a host that applied (the success window's end).
    snapshot_remove_after = models.DateTimeField(null=True, blank=True, db_index=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["change", "batch", "host__name"]
        constraints = [models.UniqueConstraint(fields=["change", "host"], name="patch_run_per_host")]

    def __str__(self) -> str:
        return f"patch run of change {self.change_id} on host {self.host_id}"
