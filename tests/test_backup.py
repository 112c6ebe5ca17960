"""A backup restores into an empty database of the same kind the suite runs on (PostgreSQL
or SQLite): hosts, secrets (still readable), sign-ins, the audit trail and change history
as they were. A wrong passphrase, a damaged archive and a database with data are refused
with a clear message, and nothing is written."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from hosts.models import Change, ChangeRun, Host, VCenter
from portal import audit
from portal.models import AuditEntry, Project
from registry.models import Registry
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parent.parent
PASSPHRASE = "a long enough passphrase"
SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nhost-key-material\n-----END OPENSSH PRIVATE KEY-----"

#: Run in the restored portal: what a user of it would see.
READ_BACK = """
import json
from django.contrib.auth import get_user_model
from hosts.models import Change, Host, VCenter
from portal.models import AuditEntry
from registry.models import Registry
host = Host.objects.get()
change = Change.objects.get()
user = get_user_model().objects.get(username="ada")
print(json.dumps({
    "host": [host.name, host.project.name, host.ssh_private_key, sorted(t.name for t in host.tags.all())],
    "vcenter_password": VCenter.objects.get().password,
    "registry_password": Registry.objects.get().password,
    "password_ok": user.check_password(PASSWORD),
    "audit": [[e.action, e.actor_name, e.at.isoformat()] for e in AuditEntry.objects.order_by("id")],
    "change": [change.title, change.status, change.created_by.username,
               [r.host.name for r in change.runs.all()]],
    # Rows came with their ids: the next one made does not collide with them.
    "next_host_id_free": Host.objects.create(
        project=host.project, name="after", docker_url="tcp://x:2376"
    ).pk > host.pk,
}))
""".replace("PASSWORD", repr(PASSWORD))


@dataclass
class Target:
    """An empty database of the suite's kind, and the environment of a portal using it."""

    env: dict[str, str]

    def manage(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    def read_back(self) -> dict[str, object]:
        return json.loads(self.manage("shell", "-c", READ_BACK, check=True).stdout.strip().splitlines()[-1])

    def tables_with_rows(self) -> str:
        code = "from portal.backup import rows_present; print(rows_present())"
        return self.manage("shell", "-c", code, check=True).stdout.strip().splitlines()[-1]

    def untouched(self) -> bool:
        """No table at all: not even migrate ran."""
        code = "from django.db import connection; print(len(connection.introspection.table_names()))"
        return self.manage("shell", "-c", code, check=True).stdout.strip().splitlines()[-1] == "0"


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Target]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    url = os.environ.get("DATABASE_URL")
    if not url:
        env["PORTAL_SQLITE_PATH"] = str(tmp_path / "restored.sqlite3")
        yield Target(env)
        return
    import psycopg

    name = f"restore_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    env["DATABASE_URL"] = urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
    try:
        yield Target(env)
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def passphrase_file(tmp_path: Path) -> Path:
    path = tmp_path / "passphrase"
    path.write_text(PASSPHRASE + "\n")
    return path


@pytest.fixture
def archive(tmp_path: Path, passphrase_file: Path, make_user) -> Path:  # type: ignore[no-untyped-def]
    """A portal with a bit of everything, backed up."""
    project = Project.objects.create(name="web")
    ada = make_user("ada")
    host = Host.objects.create(project=project, name="web-1", docker_url="tcp://10.0.0.5:2376")
    host.ssh_private_key = SSH_KEY
    host.save()
    host.tags.create(name="edge")
    VCenter.objects.create(name="vc", url="https://vc.example", username="admin", password="vc-pass")
    Registry.objects.create(name="hub", url="https://registry.example", username="bot", password="reg-pass")
    change = Change.objects.create(project=project, title="harden sshd", created_by=ada, status="applied")
    ChangeRun.objects.create(change=change, host=host)
    audit.record("host.create", obj=host, project=project, actor=ada)
    audit.record("change.apply", obj=change, project=project, actor=ada)
    path = tmp_path / "portal.backup"
    call_command("backup", str(path), passphrase_file=str(passphrase_file))
    return path


def test_round_trip_keeps_hosts_secrets_audit_and_changes(
    target: Target, archive: Path, passphrase_file: Path
) -> None:
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert b"vc-pass" not in archive.read_bytes() and b"web-1" not in archive.read_bytes()
    entries = [[e.action, e.actor_name, e.at.isoformat()] for e in AuditEntry.objects.order_by("id")]

    done = target.manage("restore", str(archive), "--passphrase-file", str(passphrase_file), check=True)

    assert "hosts.host: 1" in done.stdout
    assert target.read_back() == {
        "host": ["web-1", "web", SSH_KEY, ["edge"]],
        "vcenter_password": "vc-pass",
        "registry_password": "reg-pass",
        "password_ok": True,
        "audit": entries,
        "change": ["harden sshd", "applied", "ada", ["web-1"]],
        "next_host_id_free": True,
    }


def test_restores_into_the_other_kind_of_database(
    archive: Path, passphrase_file: Path, tmp_path: Path
) -> None:
    """Out of the embedded setup and into production, or back: the archive is not tied to one."""
    if not os.environ.get("DATABASE_URL"):
        pytest.skip("made on PostgreSQL only: the embedded run has no PostgreSQL to restore into")
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
    sqlite = Target({**env, "PORTAL_SQLITE_PATH": str(tmp_path / "embedded.sqlite3")})

    sqlite.manage("restore", str(archive), "--passphrase-file", str(passphrase_file), check=True)

    restored = sqlite.read_back()
    assert restored["host"] == ["web-1", "web", SSH_KEY, ["edge"]]
    assert restored["vcenter_password"] == "vc-pass"


def test_into_a_portal_with_another_key_secrets_are_reencrypted_with_it(
    target: Target, archive: Path, passphrase_file: Path
) -> None:
    target.env["PORTAL_ENCRYPTION_KEY"] = Fernet.generate_key().decode()

    target.manage("restore", str(archive), "--passphrase-file", str(passphrase_file), check=True)

    # Only the new portal's own key: the archived one is not needed any more.
    assert target.read_back()["vcenter_password"] == "vc-pass"


def test_without_a_key_the_archived_one_is_written_for_the_operator(
    target: Target, archive: Path, passphrase_file: Path, tmp_path: Path
) -> None:
    del target.env["PORTAL_ENCRYPTION_KEY"]
    key_file = tmp_path / "key.env"

    refused = target.manage("restore", str(archive), "--passphrase-file", str(passphrase_file))
    assert refused.returncode != 0 and "--write-key" in refused.stderr
    target.manage(
        "restore",
        str(archive),
        "--passphrase-file",
        str(passphrase_file),
        "--write-key",
        str(key_file),
        check=True,
    )

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    name, _, value = key_file.read_text().strip().partition("=")
    assert name == "PORTAL_ENCRYPTION_KEY" and value == os.environ["PORTAL_ENCRYPTION_KEY"]
    target.env["PORTAL_ENCRYPTION_KEY"] = value
    assert target.read_back()["registry_password"] == "reg-pass"


def test_wrong_passphrase_is_refused_and_nothing_written(
    target: Target, archive: Path, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase at all\n")

    refused = target.manage("restore", str(archive), "--passphrase-file", str(wrong))

    assert refused.returncode != 0
    assert "wrong passphrase" in refused.stderr and "Traceback" not in refused.stderr
    assert target.untouched()


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_damaged_archive_is_refused_and_nothing_written(
    target: Target, archive: Path, passphrase_file: Path, damage: str
) -> None:
    data = bytearray(archive.read_bytes())
    if damage == "truncated":
        del data[-100:]
    else:
        data[len(data) // 2] ^= 0x01
    archive.write_bytes(bytes(data))

    refused = target.manage("restore", str(archive), "--passphrase-file", str(passphrase_file))

    assert refused.returncode != 0
    assert "corrupted or truncated" in refused.stderr and "Traceback" not in refused.stderr
    assert target.untouched()


def test_database_with_data_is_refused_and_left_alone(
    target: Target, archive: Path, passphrase_file: Path
) -> None:
    target.manage("migrate", "--verbosity=0", check=True)
    target.manage(
        "shell", "-c", "from portal.models import Project; Project.objects.create(name='mine')", check=True
    )

    refused = target.manage("restore", str(archive), "--passphrase-file", str(passphrase_file))

    assert refused.returncode != 0
    assert "not empty" in refused.stderr and "portal_project" in refused.stderr
    assert target.tables_with_rows() == "['portal_project']"


def test_backup_refuses_a_short_passphrase_and_an_existing_file(tmp_path: Path, archive: Path) -> None:
    short = tmp_path / "short"
    short.write_text("short\n")
    with pytest.raises(CommandError, match="too short"):
        call_command("backup", str(tmp_path / "other.backup"), passphrase_file=str(short))
    assert not (tmp_path / "other.backup").exists()
    before = archive.read_bytes()
    with pytest.raises(CommandError, match="exists already"):
        call_command("backup", str(archive), passphrase_file=str(short))
    assert archive.read_bytes() == before
