"""What every app shares: projects and memberships, credentials, the audit trail."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connections, models, transaction
from django.utils import timezone

from .fields import EncryptedTextField


class Role(models.TextChoices):
    """A member's role in a project (Admiral: project admin, member, viewer).

    The global Admin (Admiral's cloud admin) is a superuser, not a membership.
    """

    PROJECT_ADMIN = "project_admin", "Project admin"
    PROVISIONER = "provisioner", "Provisioner"
    VIEWER = "viewer", "Viewer"


class Project(models.Model):
    """A team's share of the fleet: hosts, registries and profiles belong to one."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="projects")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "project"], name="one_role_per_project")]
        ordering = ["project__name", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} is {self.get_role_display()} in {self.project}"


class Credential(models.Model):
    """A named secret the portal uses to reach something (Admiral's credentials).

    ``secret`` is the private part (password, private key, TLS key) and is stored
    encrypted; ``public`` is what may be shown (a certificate, a public key).
    """

    class Kind(models.TextChoices):
        PASSWORD = "password", "User name and password"
        SSH_KEY = "ssh_key", "SSH private key"
        CLIENT_CERTIFICATE = "client_certificate", "TLS client certificate and key"

    project = models.ForeignKey(
        Project,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="credentials",
        help_text="Empty: a system credential only Admins use.",
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    username = models.CharField(max_length=150, blank=True)
    secret = EncryptedTextField(multiline=True)
    public = models.TextField(blank=True, help_text="Certificate or public key (not secret).")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="credential_name_per_project")
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AuditTrailIsImmutable(Exception):
    """Raised by any attempt to change or delete audit entries other than by retention."""


class AuditQuerySet(models.QuerySet["AuditEntry"]):
    def update(self, **kwargs: object) -> int:
        raise AuditTrailIsImmutable("audit entries cannot be changed")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditTrailIsImmutable("audit entries cannot be deleted (only pruned by retention)")

    def prune(self, older_than: object) -> int:
        """The retention setting's way out, and the only one (portal.audit.prune_trail
        calls it and records the prune). On PostgreSQL a trigger refuses deletes unless
        this transaction says it is the prune (migration 0003)."""
        connection = connections[self.db]
        guarded = connection.vendor == "postgresql"
        with transaction.atomic(using=self.db):
            if guarded:
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL portal.audit_prune = 'on'")
            deleted, _ = models.QuerySet.delete(self.filter(at__lt=older_than))
            if guarded:
                # Off again at once: inside a caller's larger transaction, SET LOCAL
                # would otherwise last until that transaction ends.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL portal.audit_prune = 'off'")
        return deleted


class AuditEntry(models.Model):
    """Who did what, when, from where. Written only by portal.audit; never changed.

    The references to the actor and project are not database constraints and
    never cascade: deleting a user or a project leaves the trail as it was (the
    names are kept beside the ids for that reason).
    """

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150, blank=True)
    address = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=60, db_index=True)
    project = models.ForeignKey(
        Project,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="audit_entries",
    )
    project_name = models.CharField(max_length=100, blank=True)
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name or 'system'} {self.action} {self.object_repr}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditTrailIsImmutable("audit entries cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise AuditTrailIsImmutable("audit entries cannot be deleted (only pruned by retention)")


class Event(models.Model):
    """What the system noticed (Admiral's event log): a host went OFF or came back,
    drift found, a peer unreachable, a rollback. Written only by portal.events."""

    class Severity(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        ERROR = "error", "Error"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.INFO, db_index=True)
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    message = models.TextField()
    #: What happened, from portal.event_kinds ("host.off"...): what alert rules choose by.
    #: Blank for events that are only logged.
    kind = models.CharField(max_length=40, blank=True, default="", db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.severity}: {self.message}"


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 digest is kept: the token itself is
    shown once, when made, and cannot be read back (nor stolen from a backup)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    #: The first characters, to tell tokens apart in lists ("pp_AbC1…").
    prefix = models.CharField(max_length=12)
    digest = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True)
    revoked = models.DateTimeField(null=True, blank=True)
    #: Chosen when made (at most a year): a leaked token stops working on its own.
    expires = models.DateTimeField()
    #: Scope: a read-only token cannot change anything; a project's token sees and acts
    #: only there (and never beyond what its user may do). No project: all the user's.
    read_only = models.BooleanField(default=False)
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="api_tokens"
    )

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def expired(self) -> bool:
        return self.expires <= timezone.now()

    @property
    def scope(self) -> str:
        where = self.project.name if self.project_id and self.project else "all projects"
        return f"{'read-only' if self.read_only else 'read-write'}, {where}"
