"""Why TLS with the directory failed, when libldap only says "Connect error": the same
handshake again with Python's ssl, trusting the pinned CA alone (never "no verify"), whose
verification error names the cause. Nothing is sent but StartTLS's request."""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

from .models import DirectoryServer

#: LDAPMessage(messageID 1, ExtendedRequest(requestName "1.3.6.1.4.1.1466.20037")): StartTLS.
_START_TLS = b"\x30\x1d\x02\x01\x01\x77\x18\x80\x16" + b"1.3.6.1.4.1.1466.20037"
#: OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and _IP_ADDRESS_MISMATCH; _CERT_HAS_EXPIRED, _NOT_YET_VALID.
_WRONG_NAME = {62, 64}
_EXPIRED, _NOT_YET = 10, 9


def diagnose(server: DirectoryServer, timeout: float = 5.0) -> str | None:
    """A sentence for a certificate problem, or None (TLS is not the trouble, or unknown)."""
    parts = urlsplit(server.url)
    host = parts.hostname or ""
    tls = parts.scheme.lower() == "ldaps"
    port = parts.port or (636 if tls else 389)
    context = ssl.create_default_context(cadata=server.ca_certificate)
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            if not tls:
                raw.sendall(_START_TLS)
                if not raw.recv(4096):
                    return None
            with context.wrap_socket(raw, server_hostname=host):
                return None
    except ssl.SSLCertVerificationError as exc:
        if exc.verify_code in _WRONG_NAME:
            return (
                f"TLS failed: the certificate of {server.url} is not for the host name {host} "
                "(use the name in its certificate)."
            )
        if exc.verify_code in {_EXPIRED, _NOT_YET}:
            return f"TLS failed: the certificate of {server.url} is expired or not yet valid."
        return (
            f"TLS failed: the certificate of {server.url} is not signed by the pinned CA certificate "
            f"(untrusted: {exc.verify_message})."
        )
    except (OSError, ssl.SSLError, ValueError):
        return None
