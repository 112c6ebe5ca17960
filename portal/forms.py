"""Clarity's look for every form the portal renders, given once here rather than per widget.

A form class lists ``ClarityForm`` first among its bases; each field it renders carries
Clarity's class for its kind of control (``clr-input``, ``clr-select``, ``clr-textarea``,
``clr-checkbox``, ``clr-radio``), also a field added or replaced in a form's own
``__init__``: the class is added when the field renders (Django's ``bound_field_class``).
The admin keeps its own look: its forms do not use this.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.forms import widgets

#: The widget kinds, most specific first (a CheckboxSelectMultiple is a Select too).
CLARITY_CLASSES: list[tuple[type[forms.Widget], str]] = [
    (forms.CheckboxSelectMultiple, "clr-checkbox"),
    (forms.RadioSelect, "clr-radio"),
    (forms.CheckboxInput, "clr-checkbox"),
    (forms.Select, "clr-select"),  # SelectMultiple and NullBooleanSelect too
    (forms.Textarea, "clr-textarea"),
    (forms.FileInput, "clr-file"),
    (widgets.Input, "clr-input"),  # text, number, email, URL, password, date...
]


def clarity_class(widget: forms.Widget) -> str:
    """The Clarity class of a visible widget's control; "" for a hidden one."""
    if widget.is_hidden:
        return ""
    return next((name for kind, name in CLARITY_CLASSES if isinstance(widget, kind)), "")


class ClarityBoundField(forms.BoundField):
    def build_widget_attrs(self, attrs: dict[str, Any], widget: forms.Widget | None = None) -> dict[str, Any]:
        attrs = super().build_widget_attrs(attrs, widget)
        widget = widget or self.field.widget
        wanted = clarity_class(widget)
        # The widget's own classes stay: these attributes replace its "class" when it renders.
        classes = f"{widget.attrs.get('class', '')} {attrs.get('class', '')}".split()
        if wanted and wanted not in classes:
            attrs["class"] = " ".join([*classes, wanted])
        return attrs


class ClarityForm(forms.BaseForm):
    """First among a form's bases: ``class HostForm(ClarityForm, SecretAwareModelForm)``."""

    bound_field_class = ClarityBoundField
