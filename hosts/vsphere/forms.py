"""The form that adds a vCenter (its address and sign-in; the certificate is confirmed on
the next page)."""

from __future__ import annotations

from django import forms

from hosts.models import VCenter
from hosts.vsphere import client as vsphere
from portal.fields import SecretFormField
from portal.forms import ClarityForm
from portal.models import Project


class VCenterForm(ClarityForm, forms.Form):
    name = forms.CharField(max_length=100)
    url = forms.CharField(
        max_length=300, label="Address", help_text="https://vcenter.example.com (port optional)"
    )
    username = forms.CharField(max_length=150, label="User")
    password = SecretFormField(max_length=500, help_text="Stored encrypted and never shown again.")
    thumbprint = forms.CharField(
        max_length=120,
        required=False,
        label="Expected SHA-256 thumbprint",
        help_text="Optional: if you have it from vCenter, the portal refuses any other certificate.",
    )
    auto_register_project = forms.ModelChoiceField(
        queryset=Project.objects.all(),
        required=False,
        label="Register new Photon VMs into",
        help_text="New Photon VMs become hosts of this project. Empty: VMs link only to the hosts "
        "provisioning made of them, or as an Admin confirms.",
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if VCenter.objects.filter(name=name).exists():
            raise forms.ValidationError("A vCenter of that name exists already.")
        return name

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        try:
            vsphere.endpoint(url)
        except vsphere.VSphereError as exc:
            raise forms.ValidationError(str(exc)) from None
        return url

    def clean_thumbprint(self) -> str:
        text = self.cleaned_data["thumbprint"].strip()
        if not text:
            return ""
        try:
            return vsphere.normalize_thumbprint(text)
        except vsphere.VSphereError as exc:
            raise forms.ValidationError(str(exc)) from None
