"""The Docker token flow against the lab's token registry: the right scope, tokens reused until expiry."""

from __future__ import annotations

import time
from typing import Any

from registry.clients import http
from registry.clients.distribution import DistributionClient
from registry.clients.errors import AuthenticationFailed
from registry.clients.http import Transport


def token_info(lab_registries: list[dict[str, Any]]) -> dict[str, Any]:
    return next(r for r in lab_registries if r["name"] == "token")


def test_a_token_per_scope_is_fetched_once_and_then_sent_up_front(lab_registries) -> None:  # type: ignore[no-untyped-def]
    info = token_info(lab_registries)
    transport = Transport(info["url"], username=info["user"], password=info["password"])
    client = DistributionClient(transport)
    client.manifest("library/photon", "5.0")
    assert transport.token_fetches == 1
    assert transport.round_trips == 3  # 401 challenge, token, the manifest

    client.manifest("library/photon", "4.0")
    client.digest("library/photon", "latest")
    assert transport.token_fetches == 1, "same scope: the token is reused"
    assert transport.round_trips == 5, "and sent up front: no more 401s"

    client.tags("library/nginx")
    assert transport.token_fetches == 2, "another repository is another scope"

    # Another transport for the same registry and user (the next page view) reuses it too.
    again = Transport(info["url"], username=info["user"], password=info["password"])
    DistributionClient(again).manifest("library/photon", "3.0")
    assert again.token_fetches == 0 and again.round_trips == 1


def test_an_expired_token_is_not_reused(lab_registries) -> None:  # type: ignore[no-untyped-def]
    info = token_info(lab_registries)
    transport = Transport(info["url"], username=info["user"], password=info["password"])
    client = DistributionClient(transport)
    client.manifest("library/photon", "5.0")
    with http._tokens_lock:
        for token in http._tokens.values():
            token.expires = time.monotonic() - 1
    client.manifest("library/photon", "5.0")
    assert transport.token_fetches == 2


def test_anonymous_is_refused_with_a_clear_message(lab_registries) -> None:  # type: ignore[no-untyped-def]
    info = token_info(lab_registries)
    client = DistributionClient(Transport(info["url"]))
    try:
        client.catalog_page(10)
        raise AssertionError("the token registry let an anonymous client list its catalog")
    except AuthenticationFailed as exc:
        assert "needs a user name and password" in str(exc)
