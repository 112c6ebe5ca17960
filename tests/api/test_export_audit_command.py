"""`manage.py export_audit`: the trail as CSV, filtered like the UI, formulas neutralised."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.management import CommandError, call_command

from portal import audit
from portal.models import Project

pytestmark = pytest.mark.django_db


def test_export_writes_the_trail_as_csv(make_user, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    web = Project.objects.create(name="web")
    alice = make_user("alice", project=web, role="project_admin")
    audit.record("host.add", obj=web, project=web, actor=alice, after={"name": "=cmd|' /C calc'!A0"})
    audit.record("change.approve", obj=web, project=web, actor=make_user("bob"))

    out = tmp_path / "trail.csv"
    call_command("export_audit", "--output", str(out), "--person", "ali")
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [(r["actor"], r["action"], r["project"]) for r in rows] == [("alice", "host.add", "web")]
    assert rows[0]["after"].startswith("{")  # a dict, written as text; nothing starts with "="
    assert "exported 1 audit entries" in capsys.readouterr().err

    call_command("export_audit", "--action", "change.")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("at,actor,address,action") and len(lines) == 2 and ",bob," in lines[1]

    with pytest.raises(CommandError, match="since"):
        call_command("export_audit", "--since", "yesterday")
