"""The fleet: hosts and their containers."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from portal import access


def index(request: HttpRequest) -> HttpResponse:
    access.require(request.user, "portal.use")
    return render(request, "hosts/index.html", {"projects": access.projects(request.user)})
