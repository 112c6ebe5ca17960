"""Schemathesis against the live API, with all of its checks and its coverage, fuzzing and
stateful phases: no 500s, every answer within the published schema, every documented status
code and no other, schema-invalid input refused and schema-valid input accepted (where a rule
no JSON Schema can state refuses it, tests/api/schemathesis.toml names the operation and the
rule). A fixed seed every run, and a random one printed for reproduction. Here as an Admin with
almost nothing registered (on both databases); with the lab registered, and as a Provisioner
and a Viewer beside another project, in tests/api/test_api_schemathesis_lab.py."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from portal import audit
from portal.api_auth import issue
from portal.events import notify
from portal.models import Project, Role

ST = str(Path(sys.executable).with_name("st"))
CONFIG = Path(__file__).parent / "api" / "schemathesis.toml"
FIXED_SEED = 1


def schemathesis(
    url: str,
    token: str,
    workdir: Path,
    seed: int,
    *,
    phases: str,
    examples: int,
    options: Sequence[str] = (),
) -> None:
    """Run ``st run`` against ``url``'s schema as ``token``'s owner; ``options``: more of st's
    run options (tests/api/test_api_schemathesis_lab.py). Also imported by other tests."""
    result = subprocess.run(
        [
            ST,
            "--config-file",
            str(CONFIG),
            "run",
            f"{url}/api/schema/",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            "all",
            "--phases",
            phases,
            "--max-examples",
            str(examples),
            "--seed",
            str(seed),
            "--workers",
            "1",
            *options,
        ],
        cwd=workdir,  # st keeps its reports in ./.schemathesis
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"seed {seed}:\n" + result.stdout[-6000:] + result.stderr[-2000:]


@pytest.mark.timeout(1200)
def test_the_api_keeps_its_schema_under_generated_requests(daphne_factory, make_user, tmp_path: Path) -> None:
    web = Project.objects.create(name="web")
    admin = make_user("root", admin=True)
    make_user("viewer", project=web, role=Role.VIEWER)
    audit.record("host.add", project=web, actor=admin, obj=web, after={"name": "photon-01"})
    notify("photon-01 is OFF", severity="error", project=web)
    _, token = issue(admin, "schemathesis")
    # The wrong-token brake is what the negative authentication cases meet first: lifted
    # here, so they and everything after them reach the views.
    server = daphne_factory("daphne-schemathesis", PORTAL_THROTTLE_API_TOKEN_FAILURES="100000/60")
    schemathesis(server.url, token, tmp_path, FIXED_SEED, phases="coverage,fuzzing,stateful", examples=10)
    seed = random.SystemRandom().randrange(2**31)
    print(f"schemathesis random seed: {seed}")  # shown with -s, and in the failure below
    schemathesis(server.url, token, tmp_path, seed, phases="fuzzing", examples=5)
