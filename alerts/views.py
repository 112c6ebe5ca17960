"""The alerts' pages: one's own alert e-mail; a scope's (global or a project's) channels and
rules; a channel's delivery log and its "Send test". Each view translates: the rules and the
access checks are in alerts.services."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from portal import access, event_kinds
from portal.models import Project
from portal.refused import Refused

from . import services
from .models import DEFAULT_WITHIN_DAYS, MAX_WITHIN_DAYS, Channel, EmailOptOut, Rule


def index(request: HttpRequest) -> HttpResponse:
    access.require(request.user, "portal.use")
    return render(
        request,
        "alerts/index.html",
        {
            "scopes": services.scopes(request.user),
            "opted_out": EmailOptOut.objects.filter(user_id=request.user.pk or 0).exists(),
        },
    )


@require_POST
def email_choice(request: HttpRequest) -> HttpResponse:
    services.set_email_opt_out(request.user, request.POST.get("opt_out") == "1")
    messages.success(
        request, "Saved: your alert e-mail is " + ("off." if request.POST.get("opt_out") == "1" else "on.")
    )
    return redirect("alerts:index")


def _scope(request: HttpRequest, project_pk: int | None) -> Project | None:
    project = services.visible_project(request.user, project_pk) if project_pk is not None else None
    services.require_scope(request.user, project)
    return project


def _scope_url(project: Project | None) -> str:
    return reverse("alerts:project", args=[project.pk]) if project else reverse("alerts:global")


def _scope_page(request: HttpRequest, project: Project | None, **extra: object) -> HttpResponse:
    refused = extra.get("refused")
    return render(
        request,
        "alerts/scope.html",
        {
            "project": project,
            "channels": Channel.objects.filter(project=project),
            "rules": Rule.objects.filter(project=project).prefetch_related("channels"),
            "kinds": event_kinds.CHOICES,
            "default_within_days": DEFAULT_WITHIN_DAYS,
            "max_within_days": MAX_WITHIN_DAYS,
            "channel_kinds": Channel.Kind.choices,
            "scope_url": _scope_url(project),
            "posted": request.POST if request.method == "POST" else {},
            **extra,
        },
        status=getattr(refused, "status", 200),
    )


def scope_global(request: HttpRequest) -> HttpResponse:
    return _scope_page(request, _scope(request, None))


def scope_project(request: HttpRequest, pk: int) -> HttpResponse:
    return _scope_page(request, _scope(request, pk))


@require_POST
def channel_create(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    project = _scope(request, pk)
    try:
        made = services.create_channel(
            request.user,
            project,
            kind=request.POST.get("kind", ""),
            name=request.POST.get("name", ""),
            recipients=request.POST.get("recipients", ""),
            url=request.POST.get("url", ""),
        )
    except Refused as refusal:
        return _scope_page(request, project, refused=refusal)
    # Rendered, not redirected: the secret is in this one answer, never in a cookie or a log.
    return _scope_page(request, project, created=made.channel, secret=made.secret, posted={})


@require_POST
def rule_create(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    project = _scope(request, pk)
    try:
        channel_ids = [int(v) for v in request.POST.getlist("channels")]
    except ValueError:
        return _scope_page(request, project, refused=Refused("Choose channels from the list.", status=400))
    try:
        within_days = int(request.POST.get("within_days") or DEFAULT_WITHIN_DAYS)
    except ValueError:
        return _scope_page(request, project, refused=Refused("Give the days as a number.", status=400))
    try:
        services.create_rule(
            request.user,
            project,
            name=request.POST.get("name", ""),
            kinds=request.POST.getlist("kinds"),
            channel_ids=channel_ids,
            digest=request.POST.get("digest") == "1",
            within_days=within_days,
        )
    except Refused as refusal:
        return _scope_page(request, project, refused=refusal)
    messages.success(request, "Rule saved.")
    return redirect(_scope_url(project))


@require_POST
def rule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    rule = services.rule_for(request.user, pk)
    project = rule.project
    services.delete_rule(request.user, rule)
    messages.success(request, "Rule deleted.")
    return redirect(_scope_url(project))


def channel_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _channel_page(request, services.channel_for(request.user, pk))


def _channel_page(request: HttpRequest, channel: Channel, tested: object = None) -> HttpResponse:
    return render(
        request,
        "alerts/channel.html",
        {
            "channel": channel,
            "deliveries": channel.deliveries.prefetch_related("events")[:100],
            "scope_url": _scope_url(channel.project),
            "tested": tested,
        },
    )


@require_POST
def channel_test(request: HttpRequest, pk: int) -> HttpResponse:
    channel = services.channel_for(request.user, pk)
    return _channel_page(request, channel, tested=services.send_test(request.user, channel))


@require_POST
def channel_delete(request: HttpRequest, pk: int) -> HttpResponse:
    channel = services.channel_for(request.user, pk)
    project = channel.project
    services.delete_channel(request.user, channel)
    messages.success(request, "Channel deleted.")
    return redirect(_scope_url(project))
