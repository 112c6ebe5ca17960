"""The schema's links (portal.api_schema.add_links): every operation on one object of a
collection is reachable from the collection's list (and from its create), with the id the
answer carries, so a client, or Schemathesis's stateful phase, can chain the calls."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.api.common import client_for

pytestmark = pytest.mark.django_db


def test_every_object_operation_is_linked_from_its_collection(make_user: Any) -> None:
    answer = client_for(make_user("root", admin=True)).get(
        "/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json"
    )
    assert answer.status_code == 200
    paths = answer.json()["paths"]
    operation_ids = {op["operationId"] for ops in paths.values() for op in ops.values()}
    lists = {p: ops["get"] for p, ops in paths.items() if "get" in ops and not p.endswith("}/")}
    unlinked = []
    for path, ops in paths.items():
        # The collection this path hangs from: the longest list path that prefixes it, then "{".
        owners = [c for c in lists if path.startswith(c) and path[len(c) :].startswith("{")]
        if not owners:
            continue
        collection = max(owners, key=len)
        links = lists[collection]["responses"]["200"].get("links", {})
        parameter = path[len(collection) + 1 : path.index("}", len(collection))]
        for op in ops.values():
            link = links.get(op["operationId"])
            if link is None:
                unlinked.append(f"{collection} -> {op['operationId']}")
                continue
            assert link["operationId"] in operation_ids
            assert link["parameters"][parameter] == "$response.body#/results/0/id"
            for name in re.findall(r"\{(\w+)\}", collection):
                assert link["parameters"][name] == f"$request.path.{name}"
    assert unlinked == []
    # A create links to what one does next with the object it made.
    created = paths["/api/patch-changes/"]["post"]["responses"]["201"]["links"]
    assert created["patch_changes_approve_create"]["parameters"] == {"id": "$response.body#/id"}
