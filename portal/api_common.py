"""What every app's REST API shares: JSON-only bodies, the 409, the `detail` error shape,
number filters, and ``Refused`` (a service's no) answered as JSON."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .refused import Refused

#: Bodies are JSON: one documented media type, and form parsing never runs on API calls.
JSON_ONLY = [JSONParser]


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Not possible in this object's present state."


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


ERROR = OpenApiResponse(DetailSerializer, description="`detail` says why.")


def int_filter(params: dict[str, str], name: str) -> int | None:
    """A query parameter that must be a number when given."""
    if name not in params:
        return None
    if not params[name].isdigit():
        raise ValidationError({name: ["A number."]})
    return int(params[name])


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus ``Refused``: ``{"detail": message}``, or ``{field: [message, ...]}``
    when the refusal is about one field (the shape DRF gives validation errors)."""
    if isinstance(exc, Refused):
        body: dict[str, Any] = (
            {exc.field: exc.details or [exc.message]} if exc.field else {"detail": exc.message}
        )
        return Response(body, status=exc.status)
    return drf_exception_handler(exc, context)
