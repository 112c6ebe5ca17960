"""The API tests reuse the hosts' and vSphere tests' fixtures (lab engine, people, vcsim session)."""

from __future__ import annotations

from tests.changes.conftest import change_lab, make_host, profiled_host  # noqa: F401
from tests.hosts.conftest import no_env_ca, people, project, tls_engine  # noqa: F401
from tests.vsphere.conftest import outside  # noqa: F401
