"""Sign-in through an OpenID Connect provider: its settings (one row, edited by Admins),
how its groups claim maps to project roles, and which accounts and memberships it made
(so a sign-in changes only those, never what an Admin or a Project admin made by hand)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from portal.fields import EncryptedTextField
from portal.models import Membership, Project, Role


class Provider(models.Model):
    """The one OpenID Connect provider people may sign in with."""

    enabled = models.BooleanField(default=False, help_text="Off: the login page offers local sign-in only.")
    display_name = models.CharField(
        max_length=80, default="single sign-on", help_text='The login page says "Sign in with" this.'
    )
    issuer = models.CharField(
        "issuer URL",
        max_length=255,
        help_text="https://…; its /.well-known/openid-configuration is read to find the endpoints.",
    )
    ca_certificate = models.TextField(
        "CA certificate",
        help_text="PEM of the CA that signed the provider's certificate: the only one trusted.",
    )
    client_id = models.CharField("client ID", max_length=255)
    client_secret = EncryptedTextField()
    scopes = models.CharField(max_length=255, default="openid profile email")
    username_claim = models.CharField(max_length=60, default="preferred_username")
    email_claim = models.CharField("e-mail claim", max_length=60, default="email")
    groups_claim = models.CharField(max_length=60, default="groups", blank=True)
    #: What discovery found (read when the settings were saved or tested).
    discovered_issuer = models.CharField(max_length=255, blank=True)
    authorization_endpoint = models.CharField(max_length=500, blank=True)
    token_endpoint = models.CharField(max_length=500, blank=True)
    userinfo_endpoint = models.CharField(max_length=500, blank=True)
    jwks_uri = models.CharField("JWKS URI", max_length=500, blank=True)
    #: The provider takes the client's secret in a Basic header (client_secret_basic).
    token_basic_auth = models.BooleanField(default=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "single sign-on provider"

    def __str__(self) -> str:
        return self.display_name or self.issuer

    @property
    def discovered(self) -> bool:
        return bool(self.authorization_endpoint and self.token_endpoint and self.jwks_uri)


class GroupMapping(models.Model):
    """People whose groups claim holds ``group`` get ``role`` in ``project``, or, with
    ``admin``, are portal Admins."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="mappings")
    group = models.CharField(max_length=255)
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="sso_mappings"
    )
    role = models.CharField(max_length=20, choices=Role.choices, blank=True)
    admin = models.BooleanField("portal Admin", default=False)

    class Meta:
        ordering = ["group", "project__name"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(admin=True, project__isnull=True, role=""))
                | (models.Q(admin=False, project__isnull=False) & ~models.Q(role="")),
                name="sso_mapping_is_admin_or_project_role",
            ),
        ]

    def __str__(self) -> str:
        target = "portal Admin" if self.admin else f"{self.get_role_display()} in {self.project}"
        return f"{self.group} -> {target}"


class SsoAccount(models.Model):
    """A portal user who came from the provider, known by its subject (``sub``)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_account"
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    #: The Admin rights came from a mapping (only then may a sign-in take them back).
    admin_granted = models.BooleanField(default=False)
    #: When the mapping was last applied (each sign-in).
    last_sync = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "single sign-on account"
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="sso_account_subject_unique")
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"


class SsoMembership(models.Model):
    """Marks a membership the provider's groups made: only these are changed or removed by it."""

    membership = models.OneToOneField(Membership, on_delete=models.CASCADE, related_name="sso_grant")

    def __str__(self) -> str:
        return f"{self.membership} (from single sign-on)"
