"""Configuration changes: profiles, plan, approve, apply, verify, roll back, drift, undo.

Thin: permissions from portal.access, the flow in hosts.changes (planning, approval, revert), the work in
hosts.changes.tasks. Objects of a project the user cannot see are a 404.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from hosts.changes import approval as change_approval
from hosts.changes import desired, errors, news, services
from hosts.changes import runs as change_runs
from hosts.models import Host, Tag
from hosts.models.changes import Change, ChangeStatus, Drift, Profile
from portal import access, audit
from portal.http import AuthenticatedHttpRequest
from portal.models import Project
from portal.refused import Refused

BLANK = [("", "not managed")]
YES_NO = [*BLANK, ("yes", "yes"), ("no", "no")]


def _split(text: str) -> list[str]:
    return [item for item in re.split(r"[\s,]+", text or "") if item]


class ProfileForm(forms.Form):
    project: forms.ModelChoiceField[Project] = forms.ModelChoiceField(queryset=None, empty_label=None)
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    # sshd
    permit_root_login = forms.ChoiceField(
        required=False, choices=[*BLANK, *[(v, v) for v in ("prohibit-password", "yes", "no")]]
    )
    password_authentication = forms.ChoiceField(required=False, choices=YES_NO)
    pubkey_authentication = forms.ChoiceField(required=False, choices=YES_NO)
    allow_users = forms.CharField(required=False, help_text="User names, separated by spaces.")
    allow_groups = forms.CharField(required=False)
    port = forms.IntegerField(required=False, min_value=1, max_value=65535, label="SSH port")
    client_alive_interval = forms.IntegerField(required=False, min_value=0, max_value=86400)
    max_auth_tries = forms.IntegerField(required=False, min_value=1, max_value=100)
    banner = forms.CharField(
        required=False, help_text="/etc/issue, /etc/issue.net (another /etc/issue* file), or none."
    )
    # Docker remote API
    docker_api = forms.ChoiceField(
        required=False,
        choices=[
            *BLANK,
            ("tls", "TLS on 2376 (portal CA)"),
            ("off", "off"),
            ("insecure", "INSECURE plain 2375"),
        ],
    )
    # daemon.json
    log_driver = forms.ChoiceField(
        required=False,
        choices=[*BLANK, *[(d, d) for d in ("json-file", "local", "journald", "syslog", "none")]],
    )
    log_max_size = forms.CharField(required=False, help_text="log-opts max-size, e.g. 10m")
    registry_mirrors = forms.CharField(required=False, help_text="http(s) URLs, separated by spaces.")
    insecure_registries = forms.CharField(required=False)
    live_restore = forms.ChoiceField(required=False, choices=[*BLANK, ("true", "true"), ("false", "false")])
    # firewall
    open_ports = forms.CharField(required=False, help_text="e.g. tcp/8080 udp/53")
    closed_ports = forms.CharField(required=False)
    # kernel parameters
    sysctl = forms.CharField(
        required=False,
        label="Kernel parameters",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line, e.g. vm.max_map_count = 262144",
    )
    # where
    hosts: forms.ModelMultipleChoiceField[Host] = forms.ModelMultipleChoiceField(
        queryset=None, required=False
    )
    tags = forms.ModelMultipleChoiceField(queryset=Tag.objects.all(), required=False)

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        projects = access.projects(user, "change.plan")
        self.fields["project"].queryset = projects  # type: ignore[attr-defined]
        self.fields["hosts"].queryset = Host.objects.filter(project__in=projects).order_by("name")  # type: ignore[attr-defined]

    @classmethod
    def initial_from(cls, profile: Profile) -> dict[str, Any]:
        s = profile.settings
        sshd = s.get("sshd", {})
        daemon = s.get("daemon_json", {})
        fw = s.get("firewall", {})
        api = s.get("docker_api")
        return {
            "project": profile.project_id,
            "name": profile.name,
            "description": profile.description,
            "permit_root_login": sshd.get("PermitRootLogin", ""),
            "password_authentication": sshd.get("PasswordAuthentication", ""),
            "pubkey_authentication": sshd.get("PubkeyAuthentication", ""),
            "allow_users": sshd.get("AllowUsers", ""),
            "allow_groups": sshd.get("AllowGroups", ""),
            "port": sshd.get("Port"),
            "client_alive_interval": sshd.get("ClientAliveInterval"),
            "max_auth_tries": sshd.get("MaxAuthTries"),
            "banner": sshd.get("Banner", ""),
            "docker_api": ""
            if api is None
            else ("off" if not api.get("enabled") else ("insecure" if api.get("insecure") else "tls")),
            "log_driver": daemon.get("log-driver", ""),
            "log_max_size": (daemon.get("log-opts") or {}).get("max-size", ""),
            "registry_mirrors": " ".join(daemon.get("registry-mirrors", [])),
            "insecure_registries": " ".join(daemon.get("insecure-registries", [])),
            "live_restore": "" if "live-restore" not in daemon else str(daemon["live-restore"]).lower(),
            "open_ports": " ".join(fw.get("open", [])),
            "closed_ports": " ".join(fw.get("closed", [])),
            "sysctl": "".join(f"{k} = {v}\n" for k, v in s.get("sysctl", {}).items()),
            "hosts": list(profile.hosts.all()),
            "tags": list(profile.tags.all()),
        }

    #: Where a refused setting's message goes: (section, key) -> form field, or section -> field.
    FIELDS: ClassVar[dict[tuple[str, str] | str, str]] = {
        ("sshd", "PermitRootLogin"): "permit_root_login",
        ("sshd", "PasswordAuthentication"): "password_authentication",
        ("sshd", "PubkeyAuthentication"): "pubkey_authentication",
        ("sshd", "AllowUsers"): "allow_users",
        ("sshd", "AllowGroups"): "allow_groups",
        ("sshd", "Port"): "port",
        ("sshd", "ClientAliveInterval"): "client_alive_interval",
        ("sshd", "MaxAuthTries"): "max_auth_tries",
        ("sshd", "Banner"): "banner",
        ("daemon_json", "log-driver"): "log_driver",
        ("daemon_json", "log-opts"): "log_max_size",
        ("daemon_json", "registry-mirrors"): "registry_mirrors",
        ("daemon_json", "insecure-registries"): "insecure_registries",
        ("daemon_json", "live-restore"): "live_restore",
        "docker_api": "docker_api",
        "firewall": "open_ports",
        "sysctl": "sysctl",
    }

    @classmethod
    def field_of(cls, problem: errors.Problem) -> str | None:
        """The form field a refused setting belongs to (None: the whole form)."""
        return cls.FIELDS.get((problem.section, problem.key)) or cls.FIELDS.get(problem.section)

    def clean(self) -> dict[str, Any]:
        super().clean()  # Django's clean() returns self.cleaned_data, never None
        data = self.cleaned_data
        if self.errors:
            return data
        settings: dict[str, Any] = {}
        sshd = {
            key: data.get(name)
            for key, name in (
                ("PermitRootLogin", "permit_root_login"),
                ("PasswordAuthentication", "password_authentication"),
                ("PubkeyAuthentication", "pubkey_authentication"),
                ("AllowUsers", "allow_users"),
                ("AllowGroups", "allow_groups"),
                ("Port", "port"),
                ("ClientAliveInterval", "client_alive_interval"),
                ("MaxAuthTries", "max_auth_tries"),
                ("Banner", "banner"),
            )
            if data.get(name) not in (None, "")
        }
        if sshd:
            settings["sshd"] = sshd
        api = data.get("docker_api")
        if api == "insecure" and not access.can(self.user, "host.allow_insecure"):
            self.add_error("docker_api", "Only an Admin may choose the plain, unauthenticated Docker port.")
            return data
        if api:
            settings["docker_api"] = {"enabled": api != "off", "insecure": api == "insecure"}
        daemon: dict[str, Any] = {}
        if data.get("log_driver"):
            daemon["log-driver"] = data["log_driver"]
        if data.get("log_max_size"):
            daemon["log-opts"] = {"max-size": data["log_max_size"].strip()}
        if data.get("registry_mirrors"):
            daemon["registry-mirrors"] = _split(data["registry_mirrors"])
        if data.get("insecure_registries"):
            daemon["insecure-registries"] = _split(data["insecure_registries"])
        if data.get("live_restore"):
            daemon["live-restore"] = data["live_restore"] == "true"
        if daemon:
            settings["daemon_json"] = daemon
        fw = {"open": _split(data.get("open_ports", "")), "closed": _split(data.get("closed_ports", ""))}
        if fw["open"] or fw["closed"]:
            settings["firewall"] = fw
        kernel = {}
        for line in (data.get("sysctl") or "").splitlines():
            if not line.strip():
                continue
            key, equals, value = line.partition("=")
            if not equals or not key.strip():
                self.add_error("sysctl", f"Not “name = value”: {line.strip()}")
                return data
            kernel[key.strip()] = value.strip()
        if kernel:
            settings["sysctl"] = kernel
        if not settings:
            raise forms.ValidationError("Choose at least one setting for the profile to manage.")
        try:
            data["settings"] = desired.validate_settings(settings)
        except errors.ChangeError as exc:
            for problem in exc.problems:
                self.add_error(self.field_of(problem), problem.message)
            return data
        project = data["project"]
        strangers = [h.name for h in data.get("hosts") or [] if h.project_id != project.pk]
        if strangers:
            self.add_error("hosts", f"Not in project {project}: {', '.join(strangers)}")
        return data


def change_or_404(request: HttpRequest, pk: int, action: str = "change.view") -> Change:
    change = get_object_or_404(Change.objects.select_related("project", "profile", "reverts"), pk=pk)
    if not access.can(request.user, "change.view", change.project_id):
        raise Http404("no such change")
    access.require(request.user, action, change.project_id)
    return change


def _profile_or_404(request: HttpRequest, pk: int, action: str = "change.view") -> Profile:
    profile = get_object_or_404(Profile.objects.select_related("project"), pk=pk)
    if not access.can(request.user, "change.view", profile.project_id):
        raise Http404("no such profile")
    access.require(request.user, action, profile.project_id)
    return profile


def changes(request: HttpRequest) -> HttpResponse:
    access.require(request.user, "portal.use")
    projects = access.projects(request.user, "change.view")
    plannable = set(access.projects(request.user, "change.plan").values_list("pk", flat=True))
    profiles = list(
        Profile.objects.filter(project__in=projects)
        .select_related("project")
        .prefetch_related("hosts", "tags")
    )
    for profile in profiles:
        profile.targets = desired.hosts_of(profile)  # type: ignore[attr-defined]
        profile.may_plan = profile.project_id in plannable  # type: ignore[attr-defined]
    context = {
        "profiles": profiles,
        "changes": Change.objects.filter(project__in=projects).select_related("project", "created_by")[:50],
        "drift": Drift.objects.filter(host__project__in=projects).select_related("host", "profile"),
        "may_plan": bool(plannable),
        "drift_topics": " ".join(f"project:{pk}:drift" for pk in projects.values_list("pk", flat=True)),
    }
    return render(request, "hosts/changes.html", context)


def profile_edit(request: AuthenticatedHttpRequest, pk: int | None = None) -> HttpResponse:
    access.require(request.user, "portal.use")
    profile = _profile_or_404(request, pk, "change.plan") if pk else None
    if not access.projects(request.user, "change.plan").exists():
        raise Http404("no project to plan changes in")
    if request.method == "POST":
        form = ProfileForm(request.POST, user=request.user)
        if form.is_valid():
            data = form.cleaned_data
            before = profile.settings if profile else None
            if profile is None:
                profile = Profile(created_by=request.user)
            profile.project, profile.name = data["project"], data["name"]
            profile.description, profile.settings = data["description"], data["settings"]
            if (
                Profile.objects.filter(project=profile.project, name=profile.name)
                .exclude(pk=profile.pk)
                .exists()
            ):
                form.add_error("name", "A profile with this name exists in the project.")
            else:
                profile.save()
                profile.hosts.set(data["hosts"])
                profile.tags.set(data["tags"])
                audit.record(
                    "change.profile_save",
                    obj=profile,
                    project=profile.project,
                    before=before,
                    after=profile.settings,
                )
                messages.success(request, f"Profile {profile.name} saved.")
                return redirect("hosts:changes")
    else:
        form = ProfileForm(initial=ProfileForm.initial_from(profile) if profile else None, user=request.user)
    return render(request, "hosts/changes/profile_form.html", {"form": form, "profile": profile})


@require_POST
def change_plan(request: HttpRequest, pk: int) -> HttpResponse:
    """Plan the profile on its hosts (or the ones ticked): SSH reads only, in a task."""
    profile = _profile_or_404(request, pk, "change.plan")
    chosen = {int(v) for v in request.POST.getlist("hosts") if v.isdigit()}
    try:
        change = services.request_plan(profile, request.user, chosen)
    except Refused as exc:
        messages.error(request, f"{exc}. Edit the profile first." if exc.field == "settings" else str(exc))
        return redirect("hosts:changes")
    return redirect("hosts:change", pk=change.pk)


def change_detail(request: HttpRequest, pk: int) -> HttpResponse:
    change = change_or_404(request, pk)
    if change.status == ChangeStatus.APPLYING:
        change_runs.sweep_interrupted(change=change)
    runs = list(change.runs.select_related("host"))
    if request.GET.get("runs"):
        # The page's second read, once its socket is live (static/portal/page.js): a plan
        # that finished before the subscription published its cards to nobody.
        return render(request, "hosts/changes/partials/runs.html", {"change": change, "runs": runs})
    context = {
        "change": change,
        "runs": runs,
        "progress": change.progress(),
        "topic": news.topic(change, change.project_id),
        "may_approve": change.status == ChangeStatus.AWAITING_APPROVAL
        and access.can(request.user, "change.approve", change.project_id),
        "may_apply": change_approval.may_apply(change, request.user)
        and any(r.state in change_runs.RUNNABLE for r in runs),
        "may_revert": change.status in (ChangeStatus.APPLIED, ChangeStatus.PARTIAL, ChangeStatus.FAILED)
        and access.can(request.user, "change.plan", change.project_id)
        and not desired.is_rotation(change)
        and change.runs.filter(backups__isnull=False).exists(),
    }
    return render(request, "hosts/changes/detail.html", context)


def _act(request: HttpRequest, action: Any, change: Change, done: str) -> HttpResponse:
    try:
        action()
    except errors.ChangeError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done)
    return redirect("hosts:change", pk=change.pk)


@require_POST
def change_approve(request: HttpRequest, pk: int) -> HttpResponse:
    change = change_or_404(request, pk, "change.approve")
    return _act(request, lambda: change_approval.approve(change, request.user), change, "Approved.")


@require_POST
def change_reject(request: HttpRequest, pk: int) -> HttpResponse:
    change = change_or_404(request, pk, "change.approve")
    return _act(request, lambda: change_approval.reject(change, request.user), change, "Rejected.")


@require_POST
def change_apply(request: HttpRequest, pk: int) -> HttpResponse:
    change = change_or_404(request, pk, "change.plan")
    if request.POST.get("confirm") != "yes":
        messages.error(request, "Tick the box to confirm you have read the diffs.")
        return redirect("hosts:change", pk=change.pk)
    return _act(request, lambda: change_approval.start_apply(change, request.user), change, "Applying.")


@require_POST
def change_revert(request: HttpRequest, pk: int) -> HttpResponse:
    original = change_or_404(request, pk, "change.plan")
    try:
        change = services.request_revert(original, request.user)
    except errors.ChangeError as exc:
        messages.error(request, str(exc))
        return redirect("hosts:change", pk=original.pk)
    return redirect("hosts:change", pk=change.pk)


@require_POST
def host_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    """Rotate one host's credentials: a new change, planned in a task; its page shows the plan."""
    host = get_object_or_404(Host.objects.select_related("project"), pk=pk)
    if not access.can(request.user, "host.view", host.project_id):
        raise Http404("No such host.")
    access.require(request.user, "change.plan", host.project_id)
    try:
        change = services.request_rotation([host], request.user)
    except errors.ChangeError as exc:
        messages.error(request, f"{exc}.")
        return redirect("hosts:host", pk=host.pk)
    return redirect("hosts:change", pk=change.pk)


@require_POST
def drift_check(request: HttpRequest) -> HttpResponse:
    try:
        count = services.request_drift_check(request.user)
    except Refused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Checking {count} host(s) for drift.")
    return redirect("hosts:changes")


@require_POST
def drift_fix(request: HttpRequest, pk: int) -> HttpResponse:
    """Bring one drifted host back to its profile: a new change (plan, approval, apply)."""
    drift = get_object_or_404(Drift.objects.select_related("host", "profile"), pk=pk)
    if not access.can(request.user, "change.view", drift.host.project_id):
        raise Http404("no such host")
    access.require(request.user, "change.plan", drift.host.project_id)
    try:
        change = services.request_drift_fix(drift, request.user)
    except errors.ChangeError as exc:
        messages.error(request, f"{exc}. Edit the profile first.")
        return redirect("hosts:changes")
    return redirect("hosts:change", pk=change.pk)
