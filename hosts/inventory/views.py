"""The fleet search page: it translates a GET into ``search.search`` and the answer into HTML
(the whole page, or its results alone for htmx's as-you-type requests). The rule, who may see
what, lives in the service."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from hosts.inventory import search
from hosts.inventory.forms import SearchForm


@require_GET
def find(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET)
    text = form.cleaned_data["q"] if form.is_valid() else ""
    context = {
        "form": form,
        "text": text,
        "found": search.search(request.user, text),
        "min_length": search.MIN_LENGTH,
    }
    if getattr(request, "htmx", False):
        return render(request, "hosts/inventory/results.html", context)
    return render(request, "hosts/inventory/search.html", context)
