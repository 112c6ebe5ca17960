"""Sign-in from an LDAP / Active Directory server: its settings, how its groups map to
project roles, and which accounts and memberships the directory made (so a sync
changes only those, never what an Admin or a Project admin made by hand)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from portal.fields import EncryptedTextField
from portal.models import Membership, Project, Role


class GroupType(models.TextChoices):
    NESTED_AD = "nested_ad", "Active Directory (nested groups)"
    NESTED_GROUP_OF_NAMES = "nested_group_of_names", "groupOfNames (nested groups)"
    GROUP_OF_NAMES = "group_of_names", "groupOfNames"


#: Active Directory's userAccountControl ACCOUNTDISABLE bit (LDAP_MATCHING_RULE_BIT_AND).
AD_DISABLED_FILTER = "(userAccountControl:1.2.840.113556.1.4.803:=2)"


class DirectoryServer(models.Model):
    """The one directory the portal signs people in with (one row, edited by Admins)."""

    enabled = models.BooleanField(default=False, help_text="Off: only local accounts can sign in.")
    url = models.CharField(
        "server URL",
        max_length=255,
        help_text="ldaps://host:636, or ldap://host:389 (then StartTLS is always used).",
    )
    ca_certificate = models.TextField(
        "CA certificate",
        help_text="PEM of the CA that signed the server's certificate: the only one trusted.",
    )
    bind_dn = models.CharField("bind DN", max_length=500)
    bind_password = EncryptedTextField()
    user_search_base = models.CharField(max_length=500)
    user_filter = models.CharField(
        max_length=300,
        default="(sAMAccountName=%(user)s)",
        help_text="%(user)s is the name typed at sign-in (escaped). OpenLDAP: (uid=%(user)s).",
    )
    group_search_base = models.CharField(max_length=500)
    group_type = models.CharField(max_length=30, choices=GroupType.choices, default=GroupType.NESTED_AD)
    first_name_attribute = models.CharField(max_length=60, default="givenName")
    last_name_attribute = models.CharField(max_length=60, default="sn")
    email_attribute = models.CharField(max_length=60, default="mail")
    disabled_filter = models.CharField(
        max_length=300,
        blank=True,
        default=AD_DISABLED_FILTER,
        help_text="An account matching it cannot sign in and is deactivated at the next sync. "
        "OpenLDAP with ppolicy: (pwdAccountLockedTime=*).",
    )
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "directory server"

    def __str__(self) -> str:
        return self.url


class GroupMapping(models.Model):
    """Members of ``group_dn`` (directly or through nested groups) get ``role`` in
    ``project``, or, with ``admin``, are portal Admins."""

    server = models.ForeignKey(DirectoryServer, on_delete=models.CASCADE, related_name="mappings")
    group_dn = models.CharField("group DN", max_length=500)
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="directory_mappings"
    )
    role = models.CharField(max_length=20, choices=Role.choices, blank=True)
    admin = models.BooleanField("portal Admin", default=False)

    class Meta:
        ordering = ["group_dn", "project__name"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(admin=True, project__isnull=True, role=""))
                | (models.Q(admin=False, project__isnull=False) & ~models.Q(role="")),
                name="directory_mapping_is_admin_or_project_role",
            ),
        ]

    def __str__(self) -> str:
        target = "portal Admin" if self.admin else f"{self.get_role_display()} in {self.project}"
        return f"{self.group_dn} -> {target}"


class DirectoryAccount(models.Model):
    """A portal user who came from the directory (the sync re-reads only these)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="directory_account"
    )
    dn = models.CharField("DN", max_length=500)
    #: The Admin rights came from a mapping (only then may the directory take them back).
    admin_granted = models.BooleanField(default=False)
    #: Deactivated because the directory said so (disabled, gone): its return reactivates.
    deactivated = models.BooleanField(default=False)
    last_sync = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.dn


class DirectoryMembership(models.Model):
    """Marks a membership the directory made: only these are changed or removed by it."""

    membership = models.OneToOneField(Membership, on_delete=models.CASCADE, related_name="directory_grant")

    def __str__(self) -> str:
        return f"{self.membership} (from the directory)"
