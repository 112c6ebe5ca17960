"""OpenAPI post-processing: document the error answers every endpoint can give."""

from __future__ import annotations

from typing import Any

ERRORS = {
    "400": "Bad request: a parameter or body that fails validation; the body says which.",
    "401": "No valid token or session.",
    "403": "Signed in, but not allowed to do this.",
    "404": "No such object, or not visible to you; or a page past the end.",
}
ERROR_SCHEMA = {
    "type": "object",
    "description": "`detail` for a general error; otherwise one entry per field at fault.",
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": True,
}


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code, description in ERRORS.items():
                responses.setdefault(code, {"description": description, **error})
    return result
