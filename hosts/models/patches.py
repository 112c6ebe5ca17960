"""Patch status (hosts.patches): each repository's metadata cached once for every host using
it, each host's installed packages and what applies to it, and its pending advisories and CVEs
as rows the fleet page's "exposed to CVE-…" filter finds through an index on any database."""

from __future__ import annotations

import json
import re
import zlib
from typing import Any

from django.db import models

from hosts.models.host import Host

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
