"""The Admin's forms: the provider's settings (client secret write-only) and a mapping."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from django import forms

from portal.fields import SecretAwareModelForm
from portal.models import Project, Role

from .models import Provider

ADMIN = "admin"


class ProviderForm(SecretAwareModelForm):
    class Meta:
        model = Provider
        fields = [
            "enabled",
            "display_name",
            "issuer",
            "ca_certificate",
            "client_id",
            "client_secret",
            "scopes",
            "username_claim",
            "email_claim",
            "groups_claim",
        ]
        widgets = {"ca_certificate": forms.Textarea(attrs={"rows": 6, "class": "mono"})}

    def clean_issuer(self) -> str:
        issuer = self.cleaned_data["issuer"].strip()
        parts = urlsplit(issuer)
        if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment or " " in issuer:
            raise forms.ValidationError("The issuer's https:// URL, as the provider names itself.")
        return issuer

    def clean_ca_certificate(self) -> str:
        pem = self.cleaned_data["ca_certificate"].strip()
        try:
            certificates = x509.load_pem_x509_certificates(pem.encode())
        except ValueError:
            raise forms.ValidationError(
                "Paste the CA certificate as PEM (-----BEGIN CERTIFICATE-----)."
            ) from None
        if not certificates:
            raise forms.ValidationError("No certificate found in it.")
        return pem + "\n"

    def clean_scopes(self) -> str:
        scopes = self.cleaned_data["scopes"].split()
        if "openid" not in scopes:
            raise forms.ValidationError("The scopes must include openid.")
        return " ".join(dict.fromkeys(scopes))

    def clean_display_name(self) -> str:
        return self.cleaned_data["display_name"].strip()


class MappingForm(forms.Form):
    group = forms.CharField(label="Group (as in the groups claim)", max_length=255)
    target = forms.ChoiceField(label="Gives")
    role = forms.ChoiceField(choices=[("", "—"), *Role.choices], required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        projects = [(str(p.pk), f"a role in {p.name}") for p in Project.objects.order_by("name")]
        target = self.fields["target"]
        assert isinstance(target, forms.ChoiceField)
        target.choices = [(ADMIN, "portal Admin"), *projects]

    def clean_group(self) -> str:
        return self.cleaned_data["group"].strip()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("target") not in (None, ADMIN) and not data.get("role"):
            self.add_error("role", "Choose the role this group gives in the project.")
        return data
