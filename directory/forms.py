"""The Admin's forms: the server's settings (bind password write-only) and a mapping."""

from __future__ import annotations

from typing import Any

import ldap.dn
from cryptography import x509
from django import forms

from portal.fields import SecretAwareModelForm
from portal.models import Project, Role

from .models import DirectoryServer

ADMIN = "admin"


def ca_pem(text: str) -> str:
    """A pinned CA as pasted: PEM with at least one certificate (a bundle is fine)."""
    pem = text.strip()
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        raise forms.ValidationError(
            "Paste the CA certificate as PEM (-----BEGIN CERTIFICATE-----)."
        ) from None
    if not certificates:
        raise forms.ValidationError("No certificate found in it.")
    return pem + "\n"


def _dn(value: str, what: str) -> str:
    value = value.strip()
    if not ldap.dn.is_dn(value) or not value:
        raise forms.ValidationError(f"This is not a DN ({what}), e.g. ou=people,dc=example,dc=com.")
    return value


class ServerForm(SecretAwareModelForm):
    class Meta:
        model = DirectoryServer
        fields = [
            "enabled",
            "url",
            "ca_certificate",
            "bind_dn",
            "bind_password",
            "user_search_base",
            "user_filter",
            "group_search_base",
            "group_type",
            "first_name_attribute",
            "last_name_attribute",
            "email_attribute",
            "disabled_filter",
        ]
        widgets = {"ca_certificate": forms.Textarea(attrs={"rows": 6, "class": "mono"})}

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        if not url.lower().startswith(("ldap://", "ldaps://")) or url[-3:] == "://":
            raise forms.ValidationError("An ldaps:// or ldap:// URL (ldap:// always uses StartTLS).")
        if " " in url:
            raise forms.ValidationError("One server URL, without spaces.")
        return url

    def clean_ca_certificate(self) -> str:
        return ca_pem(self.cleaned_data["ca_certificate"])

    def clean_bind_dn(self) -> str:
        return _dn(self.cleaned_data["bind_dn"], "bind DN")

    def clean_user_search_base(self) -> str:
        return _dn(self.cleaned_data["user_search_base"], "user search base")

    def clean_group_search_base(self) -> str:
        return _dn(self.cleaned_data["group_search_base"], "group search base")

    def clean_user_filter(self) -> str:
        value = self.cleaned_data["user_filter"].strip()
        if "%(user)s" not in value or not (value.startswith("(") and value.endswith(")")):
            raise forms.ValidationError("A filter in parentheses naming %(user)s, e.g. (uid=%(user)s).")
        try:
            value % {"user": "x"}
        except (KeyError, ValueError, TypeError):
            raise forms.ValidationError("Only %(user)s may follow a % sign.") from None
        return value

    def clean_disabled_filter(self) -> str:
        value = self.cleaned_data["disabled_filter"].strip()
        if value and not (value.startswith("(") and value.endswith(")")):
            raise forms.ValidationError("A filter in parentheses, or empty.")
        return value


class TargetForm(forms.Form):
    """What a group gives: portal Admin, or a role in a project (the directory's mappings and
    single sign-on's alike: directory.mapping applies both)."""

    target = forms.ChoiceField(label="Gives")
    role = forms.ChoiceField(choices=[("", "—"), *Role.choices], required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        projects = [(str(p.pk), f"a role in {p.name}") for p in Project.objects.order_by("name")]
        target = self.fields["target"]
        assert isinstance(target, forms.ChoiceField)
        target.choices = [(ADMIN, "portal Admin"), *projects]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("target") not in (None, ADMIN) and not data.get("role"):
            self.add_error("role", "Choose the role this group gives in the project.")
        return data


class MappingForm(TargetForm):
    group_dn = forms.CharField(label="Group DN", max_length=500)
    field_order = ["group_dn", "target", "role"]

    def clean_group_dn(self) -> str:
        return _dn(self.cleaned_data["group_dn"], "group DN")
