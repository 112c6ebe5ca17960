"""The last hour of a host's or a container's resources, as the charts ask for it."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from hosts.fleet import services
from hosts.models import Host
from hosts.stats import history


@require_GET
def stats_history(request: HttpRequest, pk: int) -> JsonResponse:
    """``?series=host`` (the host's totals) or ``?series=CONTAINER-ID``."""
    host = Host.objects.get_or_404(request.user, pk)
    series = request.GET.get("series", history.HOST)
    if series != history.HOST:
        series = services.container_id_or_404(series)
    samples = history.read(host.pk, series)
    return JsonResponse({"series": series, "step": history.STEP, "samples": [s.as_dict() for s in samples]})
