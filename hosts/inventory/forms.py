"""The fleet search's one box (the page's; the header's is a plain GET to the same page)."""

from __future__ import annotations

from django import forms
from django.urls import reverse_lazy

from portal.forms import ClarityForm


class SearchForm(ClarityForm, forms.Form):
    q = forms.CharField(
        label="Find",
        required=False,
        max_length=200,
        strip=True,
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": "Name, image, label (key=value) or port",
                "autocomplete": "off",
                "autofocus": True,
                # As-you-type: the results part only, once typing pauses; the address follows.
                "hx-get": reverse_lazy("hosts:search"),
                "hx-trigger": "input changed delay:300ms, search",
                "hx-target": "#search-results",
                "hx-swap": "innerHTML",
                "hx-replace-url": "true",
            }
        ),
    )
