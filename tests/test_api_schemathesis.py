"""Schemathesis against the live API: no 500s, and every answer within the published schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from portal import audit
from portal.api_auth import issue
from portal.events import notify
from portal.models import Project, Role

ST = str(Path(sys.executable).with_name("st"))


def test_the_api_keeps_its_schema_under_generated_requests(daphne_factory, make_user, tmp_path: Path) -> None:
    web = Project.objects.create(name="web")
    admin = make_user("root", admin=True)
    make_user("viewer", project=web, role=Role.VIEWER)
    audit.record("host.add", project=web, actor=admin, obj=web, after={"name": "photon-01"})
    notify("photon-01 is OFF", severity="error", project=web)
    _, token = issue(admin, "schemathesis")
    server = daphne_factory("daphne-schemathesis")
    result = subprocess.run(
        [
            ST,
            "run",
            f"{server.url}/api/schema/",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
            "--max-examples",
            "25",
            "--seed",
            "1",
            "--workers",
            "1",
        ],
        cwd=tmp_path,  # st keeps its reports in ./.schemathesis
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
