"""The profile form: a profile's desired settings as fields people fill in, checked by the
same rules as every other way in (``hosts.changes.desired.validate_settings``)."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from django import forms

from hosts.changes import desired, errors
from hosts.models import Host, Tag
from hosts.models.changes import Profile
from portal import access
from portal.forms import ClarityForm
from portal.models import Project

BLANK = [("", "not managed")]
YES_NO = [*BLANK, ("yes", "yes"), ("no", "no")]


def _split(text: str) -> list[str]:
    return [item for item in re.split(r"[\s,]+", text or "") if item]


class ProfileForm(ClarityForm, forms.Form):
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
