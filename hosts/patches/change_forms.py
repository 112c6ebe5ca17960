"""The form a person plans a patch change with: which hosts, what to apply, how to roll out.
It only reads input; hosts.patches.changes.plan_change checks and plans (as for the API)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from django import forms

from hosts.patches.changes import MAX_BATCH, MAX_WINDOW_HOURS
from hosts.patches.plan import PlanError, Selection
from portal.forms import ClarityForm

KIND_CHOICES = [
    ("security", "All security advisories"),
    ("advisories", "Chosen advisories"),
    ("all", "All updates"),
]


def _words(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(w for w in re.split(r"[\s,]+", text.strip()) if w))


class PatchChangeForm(ClarityForm, forms.Form):
    title = forms.CharField(max_length=200, required=False, help_text="Optional: a name for the approvers")
    hosts = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, required=False)
    tag = forms.ChoiceField(required=False, help_text="Or every host of the project with this tag")
    kind = forms.ChoiceField(label="Apply", choices=KIND_CHOICES, initial="security")
    advisories = forms.CharField(
        required=False,
        max_length=2000,
        help_text="For chosen advisories: their ids, separated by spaces or commas",
    )
    exclude = forms.CharField(
        required=False,
        max_length=2000,
        help_text="Packages to leave alone: names or patterns (kernel*), separated by spaces or commas",
    )
    batch_size = forms.IntegerField(
        min_value=1, max_value=MAX_BATCH, initial=1, help_text="Hosts patched at once"
    )
    pause_on_failure = forms.BooleanField(
        required=False,
        initial=True,
        help_text="Stop before the next batch when a host fails or is rolled back",
    )
    success_window_hours = forms.IntegerField(
        min_value=0,
        max_value=MAX_WINDOW_HOURS,
        initial=24,
        label="Keep VM snapshots (hours)",
        help_text="A VM's snapshot is removed this long after its host was patched",
    )

    def __init__(
        self,
        *args: Any,
        host_choices: list[tuple[str, str]],
        tag_choices: Sequence[tuple[str, str]] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        hosts, tag = self.fields["hosts"], self.fields["tag"]
        assert isinstance(hosts, forms.MultipleChoiceField) and isinstance(tag, forms.ChoiceField)
        hosts.choices = host_choices
        tag.choices = [("", "—"), *tag_choices]

    def selection(self) -> Selection | None:
        """The selection, or None with the error on the form."""
        data = self.cleaned_data
        try:
            return Selection(data["kind"], _words(data["advisories"]), _words(data["exclude"]))
        except PlanError as exc:
            self.add_error("advisories" if data["kind"] == "advisories" else "kind", str(exc))
            return None
