"""Adding or editing a registry: checked against the registry itself before it is saved."""

from __future__ import annotations

from typing import Any

from cryptography import x509
from django import forms

from portal.fields import SecretAwareModelForm
from portal.forms import ClarityForm

from .browse import verify
from .clients.errors import RegistryError
from .clients.http import normalize_url
from .models import Registry


class RegistryForm(ClarityForm, SecretAwareModelForm):
    class Meta:
        model = Registry
        fields = [
            "name",
            "kind",
            "url",
            "auth",
            "username",
            "password",
            "verify_tls",
            "ca_certificate",
            "projects",
        ]
        widgets = {
            "projects": forms.CheckboxSelectMultiple,
            "ca_certificate": forms.Textarea(attrs={"rows": 4}),
        }

    #: Tests and the admin can switch the live check off; people cannot.
    verify_with_registry = True

    def clean_url(self) -> str:
        try:
            return normalize_url(self.cleaned_data["url"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_ca_certificate(self) -> str:
        pem = self.cleaned_data.get("ca_certificate", "").strip()
        if pem:
            try:
                x509.load_pem_x509_certificates(pem.encode())
            except ValueError:
                raise forms.ValidationError(
                    "Paste the CA certificate in PEM form (-----BEGIN CERTIFICATE-----)."
                ) from None
        return pem

    def clean(self) -> dict[str, Any]:
        super().clean()  # Django's clean() returns self.cleaned_data, never None
        data = self.cleaned_data
        auth = data.get("auth")
        if auth == Registry.Auth.ROBOT and data.get("kind") != Registry.Kind.HARBOR:
            self.add_error(
                "auth", "Robot accounts are Harbor's; choose User name and password for other registries."
            )
        if auth in {Registry.Auth.BASIC, Registry.Auth.ROBOT}:
            if not data.get("username"):
                self.add_error("username", "Needed for this kind of authentication.")
            if not data.get("password") and not (self.instance.pk and self.instance.password):
                self.add_error("password", "Needed for this kind of authentication.")
            if (
                auth == Registry.Auth.ROBOT
                and data.get("username")
                and not data["username"].startswith("robot$")
            ):
                self.add_error("username", "Harbor robot accounts are named robot$… (as Harbor shows them).")
        if self.errors or not self.verify_with_registry:
            return data
        candidate = Registry(
            pk=self.instance.pk,
            name=data.get("name", ""),
            kind=data.get("kind", Registry.Kind.DISTRIBUTION),
            url=data.get("url", ""),
            auth=auth or Registry.Auth.ANONYMOUS,
            username=data.get("username", ""),
            password=data.get("password") or (self.instance.password if self.instance.pk else ""),
            verify_tls=data.get("verify_tls", True),
            ca_certificate=data.get("ca_certificate", ""),
        )
        try:
            verify(candidate)
        except RegistryError as exc:
            raise forms.ValidationError(f"The registry could not be used: {exc}.") from None
        return data
