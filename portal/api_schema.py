"""OpenAPI post-processing: document the error answers every endpoint can give."""

from __future__ import annotations

from typing import Any

ERRORS = {
    "400": "Bad request: a parameter or body that fails validation; the body says which.",
    "401": "No valid token or session.",
    "403": "Signed in, but not allowed to do this.",
    "404": "No such object, or not visible to you; or a page past the end.",
    "429": "Too many requests (e.g. wrong tokens) from this address: wait the seconds `detail` says.",
}
ERROR_SCHEMA = {
    "type": "object",
    "description": "`detail` for a general error; otherwise one entry per field at fault.",
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": True,
}


#: As portal.api_common.MAX_ID (kept apart: this module is loaded with the settings).
MAX_ID = 2**63 - 1
#: Query strings never carry NUL: PostgreSQL refuses it in text (portal.api_policy.StrictFilters).
NO_NUL = "^[^\\u0000]*$"


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code, description in ERRORS.items():
                responses.setdefault(code, {"description": description, **error})
            for parameter in operation.get("parameters", []):
                _bound(parameter)
    return result


def _bound(parameter: dict[str, Any]) -> None:
    """What the code refuses, said in the schema: ids within the database's range, no NUL."""
    schema = parameter.get("schema", {})
    if schema.get("type") == "integer" and parameter.get("in") in {"query", "path"}:
        schema.setdefault("minimum", 1)
        schema.setdefault("maximum", MAX_ID)
    elif (
        schema.get("type") == "string"
        and parameter.get("in") == "query"
        and not {"enum", "format", "pattern"} & set(schema)
    ):
        schema["pattern"] = NO_NUL
