"""Applications' templates: a Compose file per version, kept per project (issue 16)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from hosts.models.host import Host
from portal.fields import EncryptedTextField
from portal.models import Project

USER = settings.AUTH_USER_MODEL
#: The first line of the Compose file the portal writes for an application it adopted.
ADOPTED = "# Adopted by Photon Portal"


class AppTemplate(models.Model):
    """A named application in a project's catalog. What it deploys is its versions' Compose
    files: the newest is what a deploy takes unless one asks for another."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="app_templates")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="app_template_name_per_project")
        ]

    def __str__(self) -> str:
        return self.name


class TemplateVersion(models.Model):
    """One save of a template: its Compose file exactly as given (an export gives these very
    bytes back, comments and key order included), never edited afterwards."""

    template = models.ForeignKey(AppTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    source = models.TextField()
    #: What changed, in the saver's words (optional).
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["template", "number"], name="template_version_number")]

    def __str__(self) -> str:
        return f"{self.template} v{self.number}"


class Application(models.Model):
    """A template deployed under a Compose project name, its services placed on the project's
    hosts. The engines hold its containers (labelled as Compose labels them); this row holds
    what was asked, where each replica went, and how the deploy went."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        DEPLOYING = "deploying", "Deploying"
        RUNNING = "running", "Deployed"
        FAILED = "failed", "Failed"
        ROLLED_BACK = "rolled_back", "Rolled back"
        REMOVED = "removed", "Removed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="applications")
    #: The Compose project name on the hosts (``docker-compose -p NAME ps`` lists it).
    name = models.CharField(max_length=63)
    template = models.ForeignKey(
        AppTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="applications"
    )
    version = models.ForeignKey(
        TemplateVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="applications"
    )
    #: The version it ran before its last update: what "Roll back" deploys again.
    previous_version = models.ForeignKey(
        TemplateVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: The Compose file deployed, as it was (the template may be edited or removed since).
    source = models.TextField()
    #: The variables' values as JSON, encrypted at rest (they often hold passwords); never shown.
    variables = EncryptedTextField(blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED)
    #: Why it failed, as its page told it.
    outcome = models.TextField(blank=True)
    #: What the deploy created (networks, volumes, containers per host): what a roll back removes.
    created_objects = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            # One name per portal while deployed: two projects' "shop" on one host would be one
            # Compose project to the engine.
            models.UniqueConstraint(
                fields=["name"],
                condition=~models.Q(state="removed"),
                name="application_name_in_use",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def adopted(self) -> bool:
        """Adopted from a Compose project found running (``hosts.applications.adoption``), not deployed
        from a template: its Compose file is the one the portal wrote, starting with ``ADOPTED``."""
        return self.template_id is None and self.version_id is None and self.source.startswith(ADOPTED)


class ApplicationPlacement(models.Model):
    """Where one replica of one service runs, and why the planner put it there."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="placements")
    service = models.CharField(max_length=100)
    replica = models.PositiveIntegerField()
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="app_placements")
    #: What the replica reserves on its host (bytes, CPUs): later plans count it as taken.
    memory = models.BigIntegerField(default=0)
    cpus = models.FloatField(default=0)
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["service", "replica"]
        constraints = [
            models.UniqueConstraint(
                fields=["application", "service", "replica"], name="one_place_per_replica"
            )
        ]

    def __str__(self) -> str:
        return f"{self.application} {self.service}-{self.replica} on {self.host}"


class AppQuota(models.Model):
    """What a project's applications may reserve, over all its hosts, as Admiral's project quotas
    did: containers, memory and CPUs. No row, or an empty limit, means no limit of that kind.

    A limit on memory or CPUs counts what each service declares (its reservation, else its
    limit); where one is set, every service deployed must declare it, or it would escape the
    count (Kubernetes' ResourceQuota asks the same of pods)."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="app_quota")
    max_containers = models.PositiveIntegerField(
        null=True, blank=True, help_text="Containers of all its applications together; empty: no limit."
    )
    max_memory_mb = models.PositiveIntegerField(
        null=True, blank=True, help_text="MiB its applications' services reserve together; empty: no limit."
    )
    max_cpus = models.DecimalField(
        max_digits=7,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="CPUs its applications' services reserve together; empty: no limit.",
    )

    def __str__(self) -> str:
        return f"application quota of {self.project}"
