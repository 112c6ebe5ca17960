"""Hosts by status per project, kept as they change (hosts.fleet.counters) so that the fleet
page and the dashboard read one row per project instead of counting the whole fleet per request."""

from __future__ import annotations

from django.db import models

from portal.models import Project


class ProjectHostCounts(models.Model):
    #: One row per project; a project without one has not been counted yet (hosts.fleet.counters).
    project = models.OneToOneField(Project, on_delete=models.CASCADE, primary_key=True, related_name="+")
    total = models.PositiveIntegerField(default=0)
    #: Containers running on the project's hosts, summed.
    running = models.PositiveBigIntegerField(default=0)
    # One per HostStatus value (hosts.fleet.counters.STATUSES).
    unknown = models.PositiveIntegerField(default=0)
    on = models.PositiveIntegerField(default=0)
    suspect = models.PositiveIntegerField(default=0)
    off = models.PositiveIntegerField(default=0)
    disabled = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"hosts of project {self.project_id}: {self.total}"


#: The counters, named as the templates read them (hosts/fleet/project_counts.html).
COUNTED = ("total", "running", "unknown", "on", "suspect", "off", "disabled")
