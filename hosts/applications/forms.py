"""The applications' forms: a template (paste a Compose file or upload one), and a deploy."""

from __future__ import annotations

import re
from typing import Any

from django import forms

from hosts.applications import compose
from portal import access
from portal.forms import ClarityForm
from portal.models import Project


class TemplateForm(ClarityForm, forms.Form):
    project: forms.ModelChoiceField[Project] = forms.ModelChoiceField(queryset=None, empty_label=None)
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    compose_file = forms.CharField(
        label="Compose file",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "compose-source"}),
        help_text="Paste it here, or upload the file below.",
    )
    upload = forms.FileField(
        label="or upload", required=False, help_text="compose.yaml, UTF-8; kept byte for byte."
    )
    note = forms.CharField(max_length=200, required=False, help_text="What this version changes.")

    def __init__(self, *args: Any, user: Any, template: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        project = self.fields["project"]
        assert isinstance(project, forms.ModelChoiceField)
        project.queryset = access.projects(user, "app.manage").order_by("name")
        if template is not None:
            # A template stays in its project: its versions and applications are that project's.
            del self.fields["project"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload = data.get("upload")
        if upload:
            try:
                # As uploaded, byte for byte: the export gives these bytes back.
                data["compose_file"] = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                self.add_error("upload", "The file is not UTF-8 text.")
        else:
            # A textarea posts its lines ending in CRLF whatever was pasted (HTML's rule):
            # the file's own line ends are LF, so those CRs are the browser's, not the person's.
            data["compose_file"] = str(data.get("compose_file") or "").replace("\r\n", "\n")
        if not str(data.get("compose_file") or "").strip() and not self.has_error("upload"):
            self.add_error("compose_file", "Paste a Compose file or upload one.")
        return data


#: Variables whose names say they hold a secret get a password box (their values are never shown back).
SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|KEY|CREDENTIAL", re.IGNORECASE)


class AppDeployForm(ClarityForm, forms.Form):
    """Deploy a template: its Compose project name, where (the planner's rules or one host),
    and a field per ``${VARIABLE}`` of the chosen version (``var_NAME``)."""

    name = forms.CharField(max_length=63, help_text="The Compose project name on the hosts.")
    one_host = forms.ChoiceField(
        label="Hosts",
        required=False,
        help_text="Where the services go: by the template's rules, or all on one host.",
    )

    def __init__(
        self, *args: Any, hosts: list[str], variables: list[compose.Variable], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        one_host = self.fields["one_host"]
        assert isinstance(one_host, forms.ChoiceField)
        one_host.choices = [("", "Placed by the rules over the project's hosts"), *((h, h) for h in hosts)]
        for variable in variables:
            secret = bool(SECRET_NAME.search(variable.name))
            self.fields[f"var_{variable.name}"] = forms.CharField(
                label=variable.name,
                required=variable.required and variable.default is None,
                initial=variable.default,
                strip=False,
                max_length=10_000,
                widget=forms.PasswordInput(render_value=True) if secret else forms.TextInput(),
                help_text=variable.error or ("Required." if variable.required else ""),
            )

    def values(self) -> dict[str, str]:
        """The variables given (an empty field is left out: its default applies)."""
        return {
            name[4:]: value
            for name, value in self.cleaned_data.items()
            if name.startswith("var_") and value not in (None, "")
        }
