"""The lab's OpenID Connect provider: a small Django site (tests/lab/oidc_provider) with
django-oauth-toolkit's OIDC support, in a process of its own, over HTTPS with a
certificate from a lab CA (:mod:`tests.lab.pki`) on a loopback port. Its SQLite database
and RSA signing key (made at each start) live in the work dir. Seeded people:

    olivia   groups ops, staff  (tests map "ops" to a project role)
    nick     group  staff       (mapped to nothing)
    root     group  ops         (collides with the portal's local Admin of that name)

and one confidential client, the portal, whose redirect URIs are
``http://127.0.0.1/sso/callback/`` (any port: RFC 8252's loopback rule) and the test
client's ``http://testserver/sso/callback/``.

``python -m tests.lab.oidc --port P --dir D`` runs it; ``up``/``down`` start and stop it
as the other peers are (tests.lab.common). No root needed.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socketserver
import ssl
import threading
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from tests.lab import common, pki

NAME = "oidc"
CLIENT_ID = "photon-portal"
#: Group names in the groups claim: tests map MAPPED_GROUP to a project role.
MAPPED_GROUP = "ops"
PEOPLE: dict[str, dict[str, Any]] = {
    "olivia": {"name": ("Olivia", "Ops"), "groups": [MAPPED_GROUP, "staff"]},
    "nick": {"name": ("Nick", "Nobody"), "groups": ["staff"]},
    "root": {"name": ("Root", "Elsewhere"), "groups": [MAPPED_GROUP]},
}
REDIRECT_URIS = ["http://127.0.0.1/sso/callback/", "http://testserver/sso/callback/"]


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Handler(WSGIRequestHandler):
    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        environ["HTTPS"] = "on"  # served over TLS: Django builds https:// URLs
        return environ


def serve(port: int, workdir: Path) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.lab.oidc_provider.settings"
    os.environ["OIDC_LAB_DIR"] = str(workdir)
    os.environ["OIDC_LAB_PORT"] = str(port)
    # Imported only now: Django must see this process's settings module first.
    import django
    from django.core.wsgi import get_wsgi_application

    django.setup()
    from tests.lab.oidc_provider.seed import seed

    seed(workdir / "seed.json")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(workdir / "tls" / "oidc.pem", workdir / "tls" / "oidc-key.pem")
    server = make_server(
        "127.0.0.1", port, get_wsgi_application(), server_class=_Server, handler_class=_Handler
    )
    # The handshake happens in each request's thread, so a stuck client holds nobody else.
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()


def up(workdir: Path) -> dict[str, Any]:
    """Start the provider, seeded; returns its issuer, CA, client and people."""
    down(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        ca = pki.CertificateAuthority.create(workdir / "tls", "Photon Portal lab OIDC CA")
        ca.issue_server(workdir / "tls", "oidc", ips=("127.0.0.1",), dns=("localhost",))
        pki.write_key(workdir / "signing-key.pem", pki.new_key("rsa"))
        client_secret = secrets.token_urlsafe(24)
        people = {
            username: {**person, "password": secrets.token_urlsafe(12), "email": f"{username}@lab.example"}
            for username, person in PEOPLE.items()
        }
        seed = workdir / "seed.json"
        seed.write_text(
            json.dumps(
                {
                    "client_id": CLIENT_ID,
                    "client_secret": client_secret,
                    "redirect_uris": REDIRECT_URIS,
                    "users": people,
                }
            )
        )
        seed.chmod(0o600)
        port = common.serve_python(
            NAME, "tests.lab.oidc", workdir, ["--dir", str(workdir)], "the lab OIDC provider"
        )
    except BaseException:
        down(workdir)
        raise
    return {
        "issuer": f"https://127.0.0.1:{port}/o",
        # The same provider by another name in its certificate: it calls itself by the first.
        "issuer_by_other_name": f"https://localhost:{port}/o",
        "url": f"https://127.0.0.1:{port}",
        "port": port,
        "ca": str(ca.cert_path),
        "ca_pem": ca.cert_path.read_text(),
        "client_id": CLIENT_ID,
        "client_secret": client_secret,
        "mapped_group": MAPPED_GROUP,
        "users": {u: {"password": p["password"], "groups": p["groups"]} for u, p in people.items()},
    }


def down(workdir: Path) -> None:
    """Stop the provider and remove its files; safe to call twice or after a failed ``up``."""
    common.stop_spawned(workdir, NAME)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    arguments = parser.parse_args()
    serve(arguments.port, arguments.dir)
