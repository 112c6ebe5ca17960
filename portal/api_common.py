"""What every app's REST API shares: JSON-only bodies, the 409, the `detail` error shape,
number filters, and ``Refused`` (a service's no) answered as JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
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


def wrong_json_type(field: serializers.Field, value: Any) -> str:
    """Why ``value``, as the JSON body gave it, is not of the type the schema gives ``field``
    ("" when it is). DRF's fields coerce (0 into "0", "1" into 1, 0 into false): a script
    that sends the wrong type must learn it, not have a guess stored."""
    if value is None:
        return ""  # allow_null decides
    if isinstance(field, serializers.BooleanField):
        return "" if isinstance(value, bool) else "Must be true or false."
    if isinstance(field, serializers.IntegerField):
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        return "" if whole and not isinstance(value, bool) else "Must be a whole number."
    if isinstance(field, serializers.CharField):
        return "" if isinstance(value, str) else "Must be a string."
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        return next(filter(None, (wrong_json_type(field.child, item) for item in value)), "")
    if isinstance(field, serializers.DictField) and isinstance(value, dict):
        return next(filter(None, (wrong_json_type(field.child, item) for item in value.values())), "")
    return ""


# A request body: each field only of its schema's JSON type (``wrong_json_type``). No docstring:
# drf-spectacular would show it as the description of every body built on this.
class JsonSerializer(serializers.Serializer):
    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            errors = {
                name: [problem]
                for name, field in self.fields.items()
                if not field.read_only and name in data and (problem := wrong_json_type(field, data[name]))
            }
            if errors:
                raise ValidationError(errors)
        return super().to_internal_value(data)


#: The largest id a database column holds (bigint): ids past it are refused as input,
#: never sent to the database.
MAX_ID = 2**63 - 1


def int_filter(params: dict[str, str], name: str) -> int | None:
    """A query parameter that is an id (1 to MAX_ID) when given."""
    if name not in params:
        return None
    value = params[name]
    if not (value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_ID):
        raise ValidationError({name: [f"An id: a whole number from 1 to {MAX_ID}."]})
    return int(value)


def bool_filter(params: dict[str, str], name: str) -> bool | None:
    """A query parameter that is true or false (also 1 or 0) when given."""
    if name not in params:
        return None
    value = params[name].lower()
    if value not in {"true", "false", "1", "0"}:
        raise ValidationError({name: ["true or false."]})
    return value in {"true", "1"}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus ``Refused``: ``{"detail": message}``, or ``{field: [message, ...]}``
    when the refusal is a 400 about one field (the shape DRF gives validation errors). A 403,
    404 or 409 is always ``detail``, as the schema documents them (ERROR), even when the service
    named a field for the page's form (a host of another project: "No such host."; a name
    deployed already)."""
    if isinstance(exc, Refused):
        body: dict[str, Any] = (
            {exc.field: exc.details or [exc.message]}
            if exc.field and exc.status == 400
            else {"detail": exc.message}
        )
        return Response(body, status=exc.status)
    if isinstance(exc, RequestDataTooBig):
        # Django's own answer is an HTML page; a script is owed JSON, as for any bad body.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response(
            {"detail": f"The request body is over {limit} bytes."}, status=status.HTTP_400_BAD_REQUEST
        )
    return drf_exception_handler(exc, context)
