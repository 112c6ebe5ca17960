"""The REST API for adding a host and verifying its endpoint (issue 20).

As the add-host page: Verify connects with what was given and reports what answers (the
engine, its certificate's fingerprint or the SSH host key) without saving; the add then
carries the fingerprint or key the caller confirmed, and is saved only when the endpoint
answers with it. The rules are ``HostForm``'s and ``hosts.fleet.adding``'s, the page's own.
Secrets in a request (the client key, the SSH private key) are never part of an answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from hosts.fleet import adding
from hosts.fleet.api_deploy import FullMatch
from hosts.fleet.engine import Verification
from hosts.fleet.forms import HostForm
from hosts.models import Host
from portal import access
from portal.api_common import ERROR, MAX_ID, JsonSerializer
from portal.refused import Refused

PEM = 20_000  # characters: a certificate chain or a key, with room to spare


def _text(max_length: int, help_text: str, **kwargs: Any) -> serializers.CharField:
    return serializers.CharField(
        max_length=max_length, required=False, allow_blank=True, default="", help_text=help_text, **kwargs
    )


class HostEndpointSerializer(JsonSerializer):
    """What the add-host form takes, before anything is confirmed."""

    project = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, help_text="A project where you manage hosts."
    )
    name = serializers.CharField(max_length=100)
    docker_url = serializers.CharField(
        max_length=300,
        help_text="tcp://HOST:2376 (TLS), ssh://USER@HOST (with ssh_private_key) or tcp://HOST:2375"
        " (insecure: an Admin only).",
    )
    tls_ca = _text(PEM, "CA certificate (PEM); empty: the engine's certificate is trusted by fingerprint.")
    tls_client_cert = _text(PEM, "Client certificate (PEM).")
    tls_client_key = _text(PEM, "Client key (PEM). Write-only: never in an answer.", trim_whitespace=False)
    insecure = serializers.BooleanField(
        default=False, help_text="Allow a plain, unauthenticated endpoint: an Admin only."
    )
    address = _text(255, "Host name or IP address for SSH (configuration changes).")
    ssh_port = serializers.IntegerField(min_value=1, max_value=65535, default=22)
    ssh_user = serializers.CharField(max_length=64, required=False, allow_blank=True, default="root")
    ssh_private_key = _text(PEM, "SSH private key. Write-only: never in an answer.", trim_whitespace=False)
    tags = serializers.ListField(
        child=serializers.CharField(
            max_length=60,
            trim_whitespace=False,
            validators=[
                FullMatch(r"^[A-Za-z0-9_ .:/-]+$", "A tag is letters, digits and _ . : / - or spaces.")
            ],
        ),
        max_length=50,
        required=False,
        default=list,
    )


class HostAddSerializer(HostEndpointSerializer):
    """... and what Verify reported, confirmed."""

    tls_fingerprint = _text(95, "The certificate's SHA-256 that verify reported (TLS endpoints).")
    trust_certificate = serializers.BooleanField(
        default=False, help_text="true: you checked the fingerprint and trust the certificate."
    )
    ssh_host_key = _text(2000, "The SSH host key line that verify reported (ssh:// endpoints).")
    trust_host_key = serializers.BooleanField(
        default=False, help_text="true: you checked the fingerprint and trust the host's SSH key."
    )


class FactsSerializer(serializers.Serializer):
    engine_id = serializers.CharField()
    hostname = serializers.CharField()
    engine_version = serializers.CharField()
    api_version = serializers.CharField()
    os_name = serializers.CharField()
    os_version = serializers.CharField()
    kernel = serializers.CharField()
    cpus = serializers.IntegerField(allow_null=True)
    memory = serializers.IntegerField(allow_null=True, help_text="bytes")
    containers_total = serializers.IntegerField()
    containers_running = serializers.IntegerField()
    images = serializers.IntegerField()


class CertificateSerializer(serializers.Serializer):
    fingerprint = serializers.CharField(help_text="SHA-256, colon-separated hex: give it as tls_fingerprint.")
    subject = serializers.CharField()
    issuer = serializers.CharField()
    not_after = serializers.CharField()


class HostKeySerializer(serializers.Serializer):
    kind = serializers.CharField()
    fingerprint = serializers.CharField(help_text="SHA256:…, as ssh-keygen -l shows it.")
    line = serializers.CharField(help_text="Give it as ssh_host_key.")


class VerificationSerializer(serializers.Serializer):
    facts = FactsSerializer()
    certificate = CertificateSerializer(allow_null=True, help_text="null for ssh:// and plain endpoints.")
    host_key = HostKeySerializer(allow_null=True, help_text="The SSH host key, for ssh:// endpoints.")
    matches_pinned = serializers.BooleanField(
        allow_null=True,
        help_text="A saved host: whether it presents what is pinned; null: a new endpoint, or none pinned.",
    )


def _answer(verification: Verification, host: Host | None = None) -> dict[str, Any]:
    certificate, host_key = verification.certificate, verification.host_key
    matches = None
    if host is not None and certificate is not None and host.tls_fingerprint:
        matches = certificate.fingerprint == host.tls_fingerprint
    elif host is not None and host_key is not None and host.ssh_host_key:
        matches = host_key.line.split()[:2] == host.ssh_host_key.split()[:2]
    return {
        "facts": verification.facts.as_dict(),
        "certificate": certificate
        and {
            "fingerprint": certificate.fingerprint,
            "subject": certificate.subject,
            "issuer": certificate.issuer,
            "not_after": certificate.not_after,
        },
        "host_key": host_key
        and {"kind": host_key.kind, "fingerprint": host_key.fingerprint, "line": host_key.line},
        "matches_pinned": matches,
    }


def _form(request: Request, body: type[HostEndpointSerializer]) -> HostForm:
    """The add-host form filled from the request, after the page's access checks: some project
    to manage hosts in at all (else 403, as the page), then the one named (403 too, existing
    or not: nothing is learnt about other projects)."""
    user = request.user
    if not (access.is_admin(user) or access.projects(user, "host.manage").exists()):
        raise PermissionDenied("not allowed: host.manage")
    given = body(data=request.data)
    given.is_valid(raise_exception=True)
    data = dict(given.validated_data)
    if not access.projects(user, "host.manage").filter(pk=data["project"]).exists():
        raise PermissionDenied("not allowed: host.manage")
    data["tags_text"] = ", ".join(data.pop("tags"))
    return HostForm(data, user=user)


def _as_api(call: Any) -> Any:
    # The form calls the tags field tags_text; the API, tags.
    try:
        return call()
    except Refused as refusal:
        if refusal.field == "tags_text":
            refusal.field = "tags"
        raise


# Typed as the viewset it is mixed into (mypy); at run time a plain mixin.
if TYPE_CHECKING:
    _APIView = GenericAPIView
else:
    _APIView = object


class HostAdding(_APIView):
    """A Project admin adds a host (verify, then add with what verify reported, confirmed).

    Mixed into hosts.fleet.api.HostViewSet, whose schema names create's answer (its
    HostSerializer, which this module cannot import: that module imports this one)."""

    def create(self, request: Request) -> Response:
        form = _form(request, HostAddSerializer)
        host = _as_api(lambda: adding.save_host(form, request.user))
        return Response(self.get_serializer(host).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="hosts_verify_new",
        request=HostEndpointSerializer,
        responses={200: VerificationSerializer, 502: ERROR},
        description="Connect as the portal will and report what answers; nothing is saved (`host.manage`).",
    )
    @action(detail=False, methods=["post"], url_path="verify", url_name="verify-new")
    def verify_new(self, request: Request) -> Response:
        form = _form(request, HostEndpointSerializer)
        return Response(_answer(_as_api(lambda: adding.verify_new(form))))

    @extend_schema(
        operation_id="hosts_verify",
        request=None,
        responses={200: VerificationSerializer, 502: ERROR},
        description="Connect to a saved host as stored and report what answers now (`host.manage`).",
    )
    @action(detail=True, methods=["post"], url_path="verify", url_name="verify")
    def verify(self, request: Request, pk: str) -> Response:
        host = Host.objects.select_related("project").get_or_404(request.user, pk, "host.manage")
        return Response(_answer(adding.verify_host(host, request.user), host))
