"""The provider's pinned CA as a file requests can verify with (it takes a path): TLS
with the provider is verified against that CA alone, host name included, never the
system store and never "no verify"."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from django.conf import settings


def ca_file(pem: str) -> str:
    """The PEM written once, named by its digest, owner-only."""
    folder = Path(settings.VAR_DIR) / "sso-ca"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(pem.encode()).hexdigest()}.pem"
    if not path.exists():
        partial = path.with_suffix(f".{os.getpid()}.new")
        partial.write_text(pem)
        partial.chmod(0o600)
        partial.replace(path)
    return str(path)
