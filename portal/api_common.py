"""What every app's REST API shares: JSON-only bodies, the 409, the `detail` error shape
and number filters."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.parsers import JSONParser

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
