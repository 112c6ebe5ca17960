"""A registry the portal browses: where it is, how to sign in, whom it is shared with.

Nothing a registry holds is copied here (docs/architecture.md): repositories, tags and
artifacts are read live through ``registry.clients`` and cached for a short while.
"""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models

from portal.fields import EncryptedTextField
from portal.models import Project
from portal.visible import VisibleQuerySet


class RegistryQuerySet(VisibleQuerySet["Registry"]):
    # A registry is shared with projects, each seeing it.
    project_path = "projects"
    view_action = "registry.view"
    many_projects = True
    not_found = "No such registry."


class Registry(models.Model):
    class Kind(models.TextChoices):
        DISTRIBUTION = "distribution", "Docker Registry v2"
        HARBOR = "harbor", "Harbor"

    class Auth(models.TextChoices):
        ANONYMOUS = "anonymous", "Anonymous"
        BASIC = "basic", "User name and password"
        ROBOT = "robot", "Harbor robot account"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.DISTRIBUTION)
    url = models.CharField(
        "URL", max_length=300, help_text="The registry's address, e.g. https://registry.example.com:5000"
    )
    auth = models.CharField("authentication", max_length=20, choices=Auth.choices, default=Auth.ANONYMOUS)
    username = models.CharField(max_length=150, blank=True)
    password = EncryptedTextField(blank=True)
    verify_tls = models.BooleanField(
        "verify TLS", default=True, help_text="Check the registry's certificate (https only)."
    )
    ca_certificate = models.TextField(
        "CA certificate",
        blank=True,
        help_text="PEM of the CA that signed the registry's certificate, if not a public one.",
    )
    projects = models.ManyToManyField(
        Project, blank=True, related_name="registries", help_text="Members of these projects see it."
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = RegistryQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "registries"

    def __str__(self) -> str:
        return self.name

    @property
    def host(self) -> str:
        """``host[:port]`` as ``docker pull`` wants it."""
        return self.url.split("://", 1)[-1].rstrip("/")

    @property
    def cache_version(self) -> str:
        # Editing a registry (URL, credentials) must not serve what the old settings fetched.
        return f"{self.pk}.{int(self.updated.timestamp()) if self.updated else 0}"


class DeletePrefix(models.Model):
    """Where the Project admins of one project may delete in a registry: repositories under
    ``prefix``. A project with none may not delete there at all (Admins always may)."""

    registry = models.ForeignKey(Registry, on_delete=models.CASCADE, related_name="delete_prefixes")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    prefix = models.CharField(
        max_length=255,
        validators=[
            RegexValidator(
                r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*/?$",
                "A repository path such as team-a or team-a/apps (lowercase, / between parts).",
            )
        ],
        help_text="Repositories at or under this path: team-a covers team-a/web and team-a/x/y, "
        "not team-ab/web.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["registry", "project", "prefix"], name="registry_delete_prefix")
        ]
        verbose_name = "delete prefix"

    def __str__(self) -> str:
        return f"{self.project}: {self.shown}"

    @property
    def shown(self) -> str:
        return self.prefix.strip("/") + "/"

    def covers(self, repository: str) -> bool:
        root = self.prefix.strip("/")
        return bool(root) and (repository == root or repository.startswith(root + "/"))
