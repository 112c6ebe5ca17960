"""Configuration changes: plan, approve, apply, verify, roll back, drift."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from portal import access


def changes(request: HttpRequest) -> HttpResponse:
    access.require(request.user, "portal.use")
    return render(request, "hosts/changes.html", {"projects": access.projects(request.user)})
