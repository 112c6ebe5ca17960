"""The REST API for deploying a container onto a host (issue 20), and following the deploy.

As the host's Deploy page: the same form's rules (``DeployForm``), the same service
(``hosts.fleet.services.request_deploy``: refused on a disabled or OFF host, audited with
the environment's keys, never its values, queued as a task). The answer is the deploy's row,
which the caller polls until it has ended.
"""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import RegexValidator
from django.http import Http404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from hosts.fleet import adding, services
from hosts.fleet.forms import DeployForm
from hosts.models import Deploy, Host
from portal.api_common import ERROR, MAX_ID, JsonSerializer

RESTART_POLICIES = [value for value, _ in DeployForm.RESTART_POLICIES]
NETWORKS = ["bridge", "host", "none"]
#: What the Deploy page's view hands request_deploy from its form (hosts.fleet.views.deploy).
SPEC = ("image", "name", "command", "environment", "ports", "restart_policy", "network", "pull_only")


#: The Deploy page's rules (DeployForm), said in the schema so a script learns them there.
IMAGE = r"^[a-z0-9]+([._/:@-][A-Za-z0-9_]+)*([._-][A-Za-z0-9_]+)*$"
CONTAINER_NAME = r"^([a-zA-Z0-9][a-zA-Z0-9_.-]+)?$"
ENV_KEY = r"^[A-Za-z_][A-Za-z0-9_]*$"


class FullMatch(RegexValidator):
    """The whole value matches (Python's ``$`` also matches before a final line break, which
    the schema's pattern does not); the schema shows ``regex.pattern`` as it is."""

    def __init__(self, pattern: str, message: str) -> None:
        super().__init__(pattern, message)
        self.whole = re.compile(pattern)

    def __call__(self, value: Any) -> None:
        if not self.whole.fullmatch(str(value)):
            raise DjangoValidationError(self.message, code=self.code)


@extend_schema_field(
    {
        "type": "object",
        "propertyNames": {"pattern": ENV_KEY, "maxLength": 200},
        "additionalProperties": {"type": "string", "maxLength": 10_000},
        "maxProperties": 200,
    }
)
class EnvironmentField(serializers.DictField):
    """``{KEY: value}``: keys as the page's KEY=value lines allow them."""

    def __init__(self, **kwargs: Any) -> None:
        child = serializers.CharField(allow_blank=True, max_length=10_000, trim_whitespace=False)
        super().__init__(child=child, **kwargs)

    def to_internal_value(self, data: Any) -> dict[str, str]:
        value: dict[str, str] = super().to_internal_value(data)
        if len(value) > 200:
            raise ValidationError("At most 200 variables.")
        bad = sorted(k for k in value if len(k) > 200 or not re.fullmatch(ENV_KEY, k))
        if bad:
            raise ValidationError(
                f"Not a variable name (letters, digits and _, not first a digit): {bad[0][:60]!r}."
            )
        return value


class PortSerializer(JsonSerializer):
    host = serializers.IntegerField(min_value=1, max_value=65535, help_text="the port published on the host")
    container = serializers.IntegerField(min_value=1, max_value=65535)
    protocol = serializers.ChoiceField(choices=["tcp", "udp"], default="tcp")


class ContainerDeploySerializer(JsonSerializer):
    """The Deploy page's fields; the environment and ports as JSON rather than lines."""

    image = serializers.CharField(
        max_length=255,
        trim_whitespace=False,
        validators=[FullMatch(IMAGE, "Not an image reference (e.g. repository/name:tag).")],
        help_text="e.g. lab/busybox:1.35 or registry:5000/team/app:1.2",
    )
    name = serializers.CharField(
        max_length=128,
        trim_whitespace=False,
        validators=[FullMatch(CONTAINER_NAME, "A container name is letters, digits and _ . - (at least 2).")],
        required=False,
        allow_blank=True,
        default="",
        help_text="Letters, digits and _ . - (at least 2); empty: a generated name.",
    )
    command = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    environment = EnvironmentField(
        required=False,
        default=dict,
        help_text="KEY: value. Values are never part of any answer, nor of the audit trail.",
    )
    ports = serializers.ListField(child=PortSerializer(), required=False, default=list, max_length=100)
    restart_policy = serializers.ChoiceField(choices=RESTART_POLICIES, default="no")
    network = serializers.ChoiceField(choices=NETWORKS, default="bridge")
    pull_only = serializers.BooleanField(default=False, help_text="Only pull the newest image of the tag.")


class ContainerDeployStateSerializer(serializers.ModelSerializer):
    # Values without labels: an enum of its own in the schema (VmTask's, with labels, keeps its name).
    state = serializers.ChoiceField(choices=Deploy.State.values, read_only=True)
    url = serializers.SerializerMethodField(help_text="Where to follow it: this answer, read again.")

    class Meta:
        model = Deploy
        # The environment (encrypted, emptied once run) is never part of an answer.
        fields = ["id", "host", "state", "outcome", "spec", "created", "finished", "url"]

    def get_url(self, deploy: Deploy) -> str:
        return reverse("api-host-deploy-detail", args=[deploy.host_id, deploy.pk])


DEPLOY_PATH = OpenApiParameter("deploy_id", int, OpenApiParameter.PATH, description="the deploy's id")

# Typed as the viewset it is mixed into (mypy); at run time a plain mixin.
if TYPE_CHECKING:
    _APIView = GenericAPIView
else:
    _APIView = object


class HostDeploys(_APIView):
    """Deploy onto a host (``host.operate``) and read a deploy (``host.view``)."""

    @extend_schema(
        operation_id="hosts_deploy",
        request=ContainerDeploySerializer,
        responses={202: ContainerDeployStateSerializer, 409: ERROR, 503: ERROR},
        description="Queue a deploy, as the host's Deploy page; follow it at `url`.",
    )
    @action(detail=True, methods=["post"], url_path="deploy", url_name="deploy")
    def deploy(self, request: Request, pk: str) -> Response:
        host = Host.objects.select_related("project").get_or_404(request.user, pk, "host.operate")
        body = ContainerDeploySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        given: dict[str, Any] = body.validated_data
        token = secrets.token_urlsafe(12)  # the page's live topic; no page follows it here
        # The page's form checks what JSON cannot say; the environment, checked above, is
        # handed over as given (the form's KEY=value lines would cut a value at a line break).
        ports = "\n".join(f"{p['host']}:{p['container']}/{p['protocol']}" for p in given["ports"])
        form = DeployForm({**given, "environment": "", "ports": ports, "token": token})
        adding.refuse_invalid(form)
        spec = {k: form.cleaned_data[k] for k in SPEC} | {"environment": given["environment"]}
        deploy = services.request_deploy(host, request.user, spec, token)
        return Response(ContainerDeployStateSerializer(deploy).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        operation_id="hosts_deploy_retrieve",
        parameters=[DEPLOY_PATH],
        responses={200: ContainerDeployStateSerializer},
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=r"deploys/(?P<deploy_id>[^/.]+)",
        url_name="deploy-detail",
    )
    def deploy_detail(self, request: Request, pk: str, deploy_id: str) -> Response:
        host = Host.objects.select_related("project").get_or_404(request.user, pk)
        if not (deploy_id.isascii() and deploy_id.isdigit() and 1 <= int(deploy_id) <= MAX_ID):
            raise Http404("No such deploy.")
        deploy = host.deploys.filter(pk=int(deploy_id)).first()
        if deploy is None:
            raise Http404("No such deploy.")
        return Response(ContainerDeployStateSerializer(deploy).data)
