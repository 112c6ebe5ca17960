"""Creating a volume or a network on a host: the fields a person fills in."""

from __future__ import annotations

from django import forms

from hosts.engine_objects.networks import NETWORK_DRIVERS
from portal.forms import ClarityForm

PAIRS_HELP = "One key=value per line."


def pairs(text: str) -> dict[str, str]:
    """``key=value`` lines (blank lines skipped) as a dict; a line without ``=`` is refused."""
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise forms.ValidationError(f"Line {number} is not key=value.")
        found[key.strip()] = value.strip()
    return found


class _WithPairs(ClarityForm, forms.Form):
    """Driver options and labels, as key=value lines."""

    options = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)
    labels = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=2000, help_text=PAIRS_HELP
    )

    def clean_options(self) -> dict[str, str]:
        return pairs(self.cleaned_data["options"])

    def clean_labels(self) -> dict[str, str]:
        return pairs(self.cleaned_data["labels"])


class VolumeForm(_WithPairs):
    name = forms.CharField(max_length=128)
    field_order = ["name", "options", "labels"]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["options"].label = "Driver options"
        self.fields["options"].help_text = (
            "The local driver's type, o and device, one key=value per line: empty for a plain volume; "
            "type=tmpfs, or type=nfs with o=addr=… and device=:/export."
        )


class NetworkForm(_WithPairs):
    name = forms.CharField(max_length=128)
    driver = forms.ChoiceField(choices=[(d, d) for d in NETWORK_DRIVERS], initial="bridge")
    subnet = forms.CharField(
        required=False, max_length=64, help_text="e.g. 172.30.0.0/24; empty: the engine picks one."
    )
    gateway = forms.CharField(
        required=False, max_length=64, help_text="e.g. 172.30.0.1; empty: the subnet's first address."
    )
    field_order = ["name", "driver", "subnet", "gateway", "options", "labels"]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["options"].label = "Driver options"
        self.fields["options"].help_text = f"{PAIRS_HELP} For macvlan and ipvlan: parent=eth0."


class ImageTagForm(ClarityForm, forms.Form):
    reference = forms.CharField(
        label="New tag",
        max_length=255,
        help_text="repository[:tag], e.g. registry.example.com:5000/team/web:1.2 (latest when left out).",
    )
