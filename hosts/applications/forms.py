"""The template form: paste a Compose file or upload one."""

from __future__ import annotations

from typing import Any

from django import forms

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
