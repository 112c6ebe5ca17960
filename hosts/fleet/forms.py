"""Adding and editing a host, and deploying a container onto one."""

from __future__ import annotations

import re
from typing import Any

from django import forms

from hosts.fleet import endpoint as engine_endpoint
from hosts.fleet import trust as engine_trust
from hosts.models import Host, Tag
from portal import access
from portal.fields import SecretAwareModelForm
from portal.forms import ClarityForm

#: Where the portal signs in. Changing any of them on an existing host points its row at
#: another machine: pinned trust and the credentials the portal issued for the old one are
#: dropped (they must never be presented elsewhere), and on an enrolled host only an Admin may.
MOVE_FIELDS = ("docker_url", "address", "ssh_port", "ssh_user")
#: Fields that decide how the portal reaches the host: changing any of them needs a new Verify.
ENDPOINT_FIELDS = (
    *MOVE_FIELDS,
    "tls_ca",
    "tls_client_cert",
    "tls_client_key",
    "insecure",
    "ssh_private_key",
)
ENROLLED_MOVE_REFUSED = (
    "This host was enrolled by the portal: only an Admin may point it at another endpoint,"
    " address, SSH port or SSH user. Nothing was changed."
)
ISSUED_CERT_STAYS = (
    "The client certificate the portal issued for this host does not go to another endpoint:"
    " give a client certificate and key for the new one."
)


class HostForm(ClarityForm, SecretAwareModelForm):
    tags_text = forms.CharField(
        label="Tags", required=False, max_length=500, help_text="Comma separated, e.g. prod, web."
    )
    #: Filled by Verify with the certificate the engine presented; saved only when confirmed.
    tls_fingerprint = forms.CharField(required=False, widget=forms.HiddenInput)
    trust_certificate = forms.BooleanField(
        required=False, label="I have checked this fingerprint and trust the engine's certificate"
    )
    #: For ssh:// endpoints: filled by Verify with the host's SSH key line; pinned only when confirmed.
    ssh_host_key = forms.CharField(required=False, widget=forms.HiddenInput, max_length=2000)
    trust_host_key = forms.BooleanField(
        required=False, label="I have checked this fingerprint and trust the host's SSH key"
    )

    class Meta:
        model = Host
        fields = [
            "project",
            "name",
            "docker_url",
            "tls_ca",
            "tls_client_cert",
            "tls_client_key",
            "insecure",
            "address",
            "ssh_port",
            "ssh_user",
            "ssh_private_key",
        ]
        labels = {
            "docker_url": "Docker endpoint",
            "tls_ca": "CA certificate (PEM)",
            "tls_client_cert": "Client certificate (PEM)",
            "tls_client_key": "Client key (PEM)",
            "insecure": "Allow insecure (plain tcp://...:2375, Admins only)",
            "address": "SSH address",
            "ssh_port": "SSH port",
            "ssh_user": "SSH user",
            "ssh_private_key": "SSH private key",
        }
        help_texts = {
            "docker_url": "tcp://HOST:2376 (TLS), ssh://USER@HOST (the SSH key below) or tcp://HOST:2375"
            " (insecure).",
            "tls_ca": "Leave empty to trust the engine's certificate by its fingerprint alone.",
        }
        widgets = {
            "tls_ca": forms.Textarea(attrs={"rows": 3}),
            "tls_client_cert": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        project = self.fields["project"]
        assert isinstance(project, forms.ModelChoiceField)  # the form field of a ForeignKey
        project.queryset = access.projects(user, "host.manage")
        project.empty_label = None
        if self.instance.pk:
            self.fields["tags_text"].initial = ", ".join(t.name for t in self.instance.tags.all())
            # The project is where the host's access lives; moving it is a remove and an add.
            self.fields["project"].disabled = True
            self.fields["tls_fingerprint"].initial = ""
        if not access.can(user, "host.allow_insecure"):
            self.fields["insecure"].disabled = True
            self.fields["insecure"].help_text = "Only an Admin can accept a plain, unauthenticated endpoint."

    def clean_docker_url(self) -> str:
        url = self.cleaned_data.get("docker_url", "").strip()
        try:
            engine_endpoint.parse_endpoint(url)
        except engine_endpoint.EndpointError as exc:
            raise forms.ValidationError(str(exc)) from None
        return url

    def clean_tags_text(self) -> list[str]:
        names = [t.strip() for t in self.cleaned_data.get("tags_text", "").split(",") if t.strip()]
        for name in names:
            if len(name) > 60 or not re.fullmatch(r"[\w .:/-]+", name):
                raise forms.ValidationError(f"{name[:60]!r} is not a valid tag (letters, digits, - _ . : /).")
        return sorted(set(names))

    def moved(self) -> bool:
        """Does this edit point an existing host at another endpoint, address, port or user?"""
        return bool(self.instance.pk) and any(name in self.changed_data for name in MOVE_FIELDS)

    def _issued_tls_dropped(self) -> bool:
        return self.moved() and bool(self.instance.client_ca_cert)

    def _issued_ssh_dropped(self) -> bool:
        return self.moved() and self.instance.ssh_key_issued

    def clean(self) -> dict[str, Any]:
        super().clean()  # Django's clean() returns self.cleaned_data, never None
        data = self.cleaned_data
        if self.moved() and self.instance.enrolled and not access.is_admin(self.user):
            raise forms.ValidationError(ENROLLED_MOVE_REFUSED)
        url = data.get("docker_url")
        if not url:
            return data
        endpoint = engine_endpoint.parse_endpoint(url)
        trust = self.trust()
        plain = endpoint.scheme == "tcp" and (
            endpoint.port == engine_endpoint.INSECURE_PORT or not (trust.ca or trust.client_cert)
        )
        insecure_changed = "insecure" in self.changed_data
        if data.get("insecure") and insecure_changed and not access.can(self.user, "host.allow_insecure"):
            self.add_error("insecure", "Only an Admin can allow an insecure endpoint.")
        if endpoint.scheme == "ssh" and not (data.get("ssh_private_key") or self.instance.ssh_private_key):
            self.add_error("ssh_private_key", "An ssh:// endpoint logs in with this key: give it.")
        if plain and not data.get("insecure") and self._issued_tls_dropped() and endpoint.scheme == "tcp":
            self.add_error("tls_client_cert", ISSUED_CERT_STAYS)
        elif plain and not data.get("insecure"):
            self.add_error(
                "docker_url",
                "A plain endpoint without TLS (tcp://...:2375, or no client certificate) is refused"
                " unless an Admin ticks 'allow insecure'.",
            )
        return data

    def trust(self) -> engine_trust.Trust:
        """The trust this form's data describes; secrets left empty on edit keep the stored ones,
        except, when the host is pointed elsewhere, the pinned CA and what the portal issued."""
        data = self.cleaned_data if hasattr(self, "cleaned_data") else {}
        stored = engine_trust.Trust.of(self.instance) if self.instance.pk else engine_trust.Trust()
        ca = (data.get("tls_ca") or "").strip()
        if self.moved() and ca == str(self.initial.get("tls_ca") or "").strip():
            ca = ""  # the pinned CA, posted back as shown: not one given for the new endpoint
        client_cert = (data.get("tls_client_cert") or "").strip()
        client_key = str(data.get("tls_client_key") or "").strip()
        if self._issued_tls_dropped():
            # ``initial``: by now the instance holds the posted values, not the stored ones.
            if client_cert == str(self.initial.get("tls_client_cert") or "").strip():
                client_cert = ""
        elif not client_key:
            client_key = stored.client_key.strip()
        ssh_private_key = str(data.get("ssh_private_key") or "").strip()
        if not ssh_private_key and not self._issued_ssh_dropped():
            ssh_private_key = stored.ssh_private_key.strip()
        return engine_trust.Trust(
            ca=ca,
            client_cert=client_cert,
            client_key=client_key,
            fingerprint=engine_trust.normalize_fingerprint(data.get("tls_fingerprint") or ""),
            insecure=bool(data.get("insecure")),
            ssh_host_key=(data.get("ssh_host_key") or "").strip(),
            ssh_private_key=ssh_private_key,
        )

    def is_ssh(self) -> bool:
        url = getattr(self, "cleaned_data", {}).get("docker_url") or self.instance.docker_url
        return str(url).startswith("ssh://")

    def endpoint_changed(self) -> bool:
        return not self.instance.pk or any(name in self.changed_data for name in ENDPOINT_FIELDS)

    def _drop_what_stays_behind(self, host: Host) -> None:
        """The host is pointed elsewhere: forget what was pinned for, and issued to, the old one."""
        trust = self.trust()
        host.tls_ca, host.tls_fingerprint, host.ssh_host_key = trust.ca, "", ""
        host.tls_client_cert, host.tls_client_key = trust.client_cert, trust.client_key
        if self._issued_tls_dropped():
            host.client_ca_cert, host.client_ca_key = "", ""
        if self._issued_ssh_dropped():
            host.ssh_private_key, host.ssh_key_issued = trust.ssh_private_key, False

    def save(self, commit: bool = True) -> Host:
        host = super().save(commit=False)
        if self.moved():
            self._drop_what_stays_behind(host)
        fingerprint = self.cleaned_data.get("tls_fingerprint")
        if host.insecure:
            host.tls_fingerprint = ""
        elif fingerprint:
            host.tls_fingerprint = engine_trust.normalize_fingerprint(fingerprint)
        if self.is_ssh():
            host.tls_fingerprint = ""
            endpoint = engine_endpoint.parse_endpoint(host.docker_url)
            if self.cleaned_data.get("ssh_host_key"):
                host.ssh_host_key = self.cleaned_data["ssh_host_key"].strip()
            # The pinned key belongs to this address: configuration over SSH goes to the same place.
            if not host.address:
                host.address, host.ssh_port, host.ssh_user = endpoint.host, endpoint.port, endpoint.user
        if commit:
            host.save()
            host.tags.set(
                [Tag.objects.get_or_create(name=name)[0] for name in self.cleaned_data["tags_text"]]
            )
        return host


class DeployForm(ClarityForm, forms.Form):
    RESTART_POLICIES = [
        ("no", "Never"),
        ("on-failure", "On failure"),
        ("unless-stopped", "Unless stopped"),
        ("always", "Always"),
    ]

    image = forms.CharField(max_length=255, help_text="e.g. lab/busybox:1.35 or registry:5000/team/app:1.2")
    name = forms.CharField(max_length=128, required=False, help_text="Leave empty for a generated name.")
    command = forms.CharField(max_length=500, required=False, help_text="Optional, e.g. sh -c 'sleep 3600'.")
    environment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, help_text="One KEY=value per line."
    )
    ports = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="One HOST:CONTAINER[/udp] per line, e.g. 8080:80.",
    )
    restart_policy = forms.ChoiceField(choices=RESTART_POLICIES, initial="no")
    network = forms.ChoiceField(
        choices=[("bridge", "bridge"), ("host", "host"), ("none", "none (no network)")], initial="bridge"
    )
    pull_only = forms.BooleanField(
        required=False, label="Only pull the image", help_text="The newest image of the tag; no container."
    )
    token = forms.CharField(widget=forms.HiddenInput, max_length=40)

    def clean_image(self) -> str:
        image = self.cleaned_data["image"].strip()
        if not re.fullmatch(r"[a-z0-9]+([._/:@-][A-Za-z0-9_]+)*([._-][A-Za-z0-9_]+)*", image):
            raise forms.ValidationError("Not an image reference (e.g. repository/name:tag).")
        return image

    def clean_name(self) -> str:
        name = self.cleaned_data.get("name", "").strip()
        if name and not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", name):
            raise forms.ValidationError("A container name is letters, digits and _ . - (at least 2).")
        return name

    def clean_environment(self) -> dict[str, str]:
        return parse_environment(self.cleaned_data.get("environment", ""))

    def clean_ports(self) -> dict[str, int]:
        ports: dict[str, int] = {}
        for line in self.cleaned_data.get("ports", "").split():
            match = re.fullmatch(r"(\d{1,5}):(\d{1,5})(/(tcp|udp))?", line.strip())
            if not match or not (0 < int(match[1]) < 65536 and 0 < int(match[2]) < 65536):
                raise forms.ValidationError(f"{line!r} is not HOST:CONTAINER[/tcp|/udp] with ports 1-65535.")
            ports[f"{match[2]}/{match[4] or 'tcp'}"] = int(match[1])
        return ports

    def clean_token(self) -> str:
        token = self.cleaned_data["token"]
        if not re.fullmatch(r"[A-Za-z0-9_-]{8,40}", token):
            raise forms.ValidationError("Reload the page and try again.")
        return token


def parse_environment(text: str) -> dict[str, str]:
    """``KEY=value`` lines (blank ones skipped) as a dict; a line without a valid key refused."""
    env: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
            raise forms.ValidationError(f"Line {number} is not KEY=value.")
        env[key.strip()] = value
    return env


#: ``[IP:]HOST:CONTAINER[/tcp|/udp]``, as ``docker run -p`` takes it (IPv4 addresses).
PORT_LINE = re.compile(r"(?:(\d{1,3}(?:\.\d{1,3}){3}):)?(\d{1,5}):(\d{1,5})(?:/(tcp|udp))?")


def parse_port_bindings(text: str) -> dict[str, list[dict[str, str]]]:
    """Port lines as the engine's ``HostConfig.PortBindings``; a bad line refused, naming it."""
    bindings: dict[str, list[dict[str, str]]] = {}
    for line in text.split():
        match = PORT_LINE.fullmatch(line)
        ip_ok = match is not None and all(int(part) < 256 for part in (match[1] or "0").split("."))
        if match is None or not ip_ok or not (0 < int(match[2]) < 65536 and 0 < int(match[3]) < 65536):
            raise forms.ValidationError(f"{line!r} is not [IP:]HOST:CONTAINER[/tcp|/udp] with ports 1-65535.")
        key = f"{int(match[3])}/{match[4] or 'tcp'}"
        bindings.setdefault(key, []).append({"HostIp": match[1] or "", "HostPort": str(int(match[2]))})
    return bindings


def port_lines(bindings: dict[str, Any] | None) -> str:
    """``HostConfig.PortBindings`` back as the lines the form shows."""
    lines = []
    for key, hosts_bound in sorted((bindings or {}).items()):
        port, _, proto = key.partition("/")
        for bound in hosts_bound or ():
            where = f"{bound['HostIp']}:" if bound.get("HostIp") else ""
            suffix = "" if proto == "tcp" else f"/{proto}"
            lines.append(f"{where}{bound.get('HostPort') or port}:{port}{suffix}")
    return "\n".join(lines)


class ContainerEditForm(ClarityForm, forms.Form):
    """Edit and recreate: the whole environment and the published ports, as they will be."""

    environment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}),
        required=False,
        help_text="One KEY=value per line: the whole environment the new container gets.",
    )
    ports = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="One [IP:]HOST:CONTAINER[/udp] per line, e.g. 8080:80 or 127.0.0.1:5432:5432.",
    )
    pull = forms.BooleanField(
        required=False,
        label="Pull the newest image of its tag first",
        help_text="Otherwise the image it has.",
    )

    def clean_environment(self) -> dict[str, str]:
        return parse_environment(self.cleaned_data.get("environment", ""))

    def clean_ports(self) -> dict[str, list[dict[str, str]]]:
        return parse_port_bindings(self.cleaned_data.get("ports", ""))
