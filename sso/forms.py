"""The Admin's forms: the provider's settings (client secret write-only) and a mapping."""

from __future__ import annotations

from urllib.parse import urlsplit

from django import forms

from directory.forms import TargetForm, ca_pem
from portal.fields import SecretAwareModelForm

from .models import Provider


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
        return ca_pem(self.cleaned_data["ca_certificate"])

    def clean_scopes(self) -> str:
        scopes = self.cleaned_data["scopes"].split()
        if "openid" not in scopes:
            raise forms.ValidationError("The scopes must include openid.")
        return " ".join(dict.fromkeys(scopes))

    def clean_display_name(self) -> str:
        return self.cleaned_data["display_name"].strip()


class MappingForm(TargetForm):
    group = forms.CharField(label="Group (as in the groups claim)", max_length=255)
    field_order = ["group", "target", "role"]

    def clean_group(self) -> str:
        return self.cleaned_data["group"].strip()
