"""OpenAPI post-processing: document the error answers every endpoint can give, and link each
collection to the operations on its objects."""

from __future__ import annotations

import re
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


def _component(result: dict[str, Any], response: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The name and schema of the component a JSON answer refers to (("", {}) when none)."""
    ref = response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
    name = ref.rsplit("/", 1)[-1]
    return name, result.get("components", {}).get("schemas", {}).get(name, {}) if name else {}


def add_links(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """OpenAPI links from each collection to the operations on one of its objects: the ids a list
    answers (``results[0].id``), or the one a create answers (``id``), are the next calls' path
    parameter. Clients follow them; Schemathesis's stateful phase chains calls with them."""
    paths = result.get("paths", {})
    for collection, operations in paths.items():
        targets = []
        for path, target_operations in paths.items():
            rest = path[len(collection) :] if path.startswith(collection) else ""
            if not rest.startswith("{"):
                continue
            parameter = rest[1 : rest.index("}")]
            targets += [
                (parameter, op["operationId"]) for op in target_operations.values() if "operationId" in op
            ]
        if not targets:
            continue
        for method, source, pointer in (("get", "200", "/results/0/id"), ("post", "201", "/id")):
            response = operations.get(method, {}).get("responses", {}).get(source)
            if response is None:
                continue
            name, schema = _component(result, response)
            fits = name.startswith("Paginated") if method == "get" else "id" in schema.get("properties", {})
            if not fits:
                continue
            # The collection's own path parameters (a host's containers) go along unchanged.
            along = {name: f"$request.path.{name}" for name in re.findall(r"\{(\w+)\}", collection)}
            response["links"] = {
                operation_id: {
                    "operationId": operation_id,
                    "parameters": {**along, parameter: f"$response.body#{pointer}"},
                }
                for parameter, operation_id in targets
            }
    return result
