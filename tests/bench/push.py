"""One sshd change pushed to many lab hosts by the portal, and the same with Ansible:
`python -m tests.bench.push --hosts 50`.

The portal's run is plan (read, render, diff) then apply (backup, temporary file,
``sshd -t``, rename, reload, a new login to verify), through ``hosts.changes`` (planning, approval, apply);
each host's apply is the body of the per-host Celery task, all run in one event
loop here as a worker with that many slots would. Ansible (ansible-core from
PyPI) makes the same kind of change with its defaults: ``lineinfile`` with
``validate: sshd -t -f %s``, then ``systemctl reload sshd`` (as the portal now does), forks = hosts, no
fact gathering; then again with ``pipelining = True``. ``bare`` is the floor: a minimal
asyncssh script doing the same steps on the same hosts (read the file to keep it, write a
temporary file, ``sshd -t``, rename, ``systemctl reload sshd``, a new login), so
``bare_ratio`` is what the portal's planning, database and checks cost on top, and
``apply_bare_ratio`` the apply alone (what runs once a change is approved; planning is a
session of its own, made before anyone approves). Prints
key=value last; exits non-zero when it could not measure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _django(db_path: Path) -> None:
    os.environ["PORTAL_SQLITE_PATH"] = str(db_path)
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django
    from django.conf import settings

    django.setup()

    class NoMigrations:
        # Tables straight from the models, as the tests make them.
        def __contains__(self, item: str) -> bool:
            return True

        def __getitem__(self, item: str) -> None:
            return None

    settings.MIGRATION_MODULES = NoMigrations()
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)


def portal_push(lab: list[dict[str, object]], max_auth_tries: int) -> tuple[float, float]:
    """(plan, apply) seconds of one change to every host of ``lab``."""
    from hosts import ssh
    from hosts.changes import apply, planning
    from hosts.models import Change, ChangeRun, Host
    from portal.models import Project

    user_model = __import__("django.contrib.auth", fromlist=["get_user_model"]).get_user_model()
    admin = user_model.objects.create_user("bench", is_superuser=True, is_staff=True)
    project = Project.objects.create(name=f"bench-{time.time_ns()}")
    key = Path(str(lab[0]["private_key"])).read_text()
    hosts = [
        Host.objects.create(
            project=project,
            name=str(h["name"]),
            docker_url=f"ssh://root@{h['address']}",
            address=str(h["address"]),
            ssh_private_key=key,
            ssh_host_key=str(h["host_key"]),
        )
        for h in lab
    ]
    started = time.monotonic()
    change = Change.objects.create(
        project=project, title="bench", settings={"sshd": {"MaxAuthTries": max_auth_tries}}, created_by=admin
    )
    planning.plan(change, hosts)
    planned = time.monotonic()
    runs = list(ChangeRun.objects.filter(change=change, state="planned").values_list("pk", flat=True))
    if len(runs) != len(hosts):
        raise RuntimeError(f"only {len(runs)} of {len(hosts)} hosts planned")
    ChangeRun.objects.filter(pk__in=runs).update(state="queued")
    Change.objects.filter(pk=change.pk).update(status="applying", applied_by=admin)
    states = asyncio.run(ssh.bounded(runs, apply.apply_run, limit=len(runs)))
    finished = time.monotonic()
    if set(states) != {"applied"}:
        reasons = set(
            ChangeRun.objects.filter(change=change).exclude(state="applied").values_list("reason", flat=True)
        )
        raise RuntimeError(
            f"the portal did not apply everywhere: {sorted(set(states))} {sorted(reasons)[:3]}"
        )
    return planned - started, finished - planned


async def _bare_one(host: dict[str, object], value: int) -> None:
    import asyncssh

    path = "/etc/ssh/sshd_config"
    options = {
        "port": int(str(host["port"])),
        "username": str(host["user"]),
        "known_hosts": ([asyncssh.import_public_key(str(host["host_key"]))], [], []),
        "client_keys": [str(host["private_key"])],
    }
    async with asyncssh.connect(str(host["address"]), **options) as conn:  # type: ignore[arg-type]
        async with conn.start_sftp_client() as sftp:
            async with sftp.open(path, "rb") as f:
                kept = await f.read()  # the backup, kept by the script
            lines = [ln for ln in kept.decode().splitlines() if not ln.startswith("MaxAuthTries")]
            temp = f"{path}.bare-{value}"
            async with sftp.open(temp, "wb") as f:
                await f.write(("\n".join([*lines, f"MaxAuthTries {value}"]) + "\n").encode())
            await sftp.chmod(temp, 0o600)
            await conn.run(f"sshd -t -f {temp}", check=True)
            await sftp.posix_rename(temp, path)
        await conn.run("systemctl reload sshd", check=True)
    while True:  # a new login; sshd refuses connections while it executes itself again
        try:
            async with asyncssh.connect(str(host["address"]), **options) as fresh:  # type: ignore[arg-type]
                await fresh.run("true", check=True)
            return
        except (OSError, asyncssh.ConnectionLost):
            await asyncio.sleep(0.05)


def bare_push(lab: list[dict[str, object]], value: int) -> float:
    async def all_hosts() -> None:
        await asyncio.gather(*(_bare_one(h, value) for h in lab))

    started = time.monotonic()
    asyncio.run(all_hosts())
    return time.monotonic() - started


PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: MaxAuthTries
      ansible.builtin.lineinfile:
        path: /etc/ssh/sshd_config
        regexp: '^#?MaxAuthTries'
        line: 'MaxAuthTries {value}'
        validate: 'sshd -t -f %s'
    - name: reload sshd
      ansible.builtin.command: systemctl reload sshd
"""


def ansible_push(lab: list[dict[str, object]], workdir: Path, value: int, *, pipelining: bool) -> float:
    binary = Path(sys.executable).parent / "ansible-playbook"
    if not binary.exists():
        raise RuntimeError("ansible-playbook not found: pip install ansible-core")
    workdir.mkdir(parents=True, exist_ok=True)
    known = workdir / "known_hosts"
    known.write_text("".join(f"{h['address']} {h['host_key']}\n" for h in lab))
    inventory = workdir / "hosts.ini"
    inventory.write_text(
        "[all]\n"
        + "".join(f"{h['name']} ansible_host={h['address']}\n" for h in lab)
        + "[all:vars]\nansible_user=root\nansible_python_interpreter=/usr/bin/python3\n"
        + f"ansible_ssh_private_key_file={lab[0]['private_key']}\n"
    )
    config = workdir / "ansible.cfg"
    config.write_text(
        f"[defaults]\ninventory = {inventory}\nforks = {len(lab)}\nhost_key_checking = True\n"
        f"local_tmp = {workdir}/tmp\n"
        "[ssh_connection]\n"
        f"ssh_args = -C -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile={known}\n"
        f"control_path_dir = {workdir}/cp\npipelining = {pipelining}\n"
    )
    playbook = workdir / "sshd.yml"
    playbook.write_text(PLAYBOOK.format(value=value))
    env = {**os.environ, "ANSIBLE_CONFIG": str(config), "HOME": str(workdir), "ANSIBLE_NOCOLOR": "1"}
    started = time.monotonic()
    result = subprocess.run(
        [str(binary), str(playbook)], env=env, capture_output=True, text=True, timeout=900
    )
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"ansible-playbook failed:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=50)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    os.chdir(REPO)
    from tests.lab import common, photon_hosts

    with tempfile.TemporaryDirectory(prefix="push-bench-", dir=REPO / "var") as tmp:
        root = Path(tmp)
        try:
            lab = photon_hosts.up(root / "hosts", hosts=args.hosts)
        except (common.LabUnavailable, TimeoutError, RuntimeError) as exc:
            print(f"could not measure: {exc}", file=sys.stderr)
            return 1
        try:
            _django(root / "bench.sqlite3")
            plan_s, apply_s = portal_push(lab, 3)
            push_s = plan_s + apply_s
            bare_s = bare_push(lab, 4)
            ansible_s = ansible_push(lab, root / "ansible", 5, pipelining=False)
            pipelined_s = ansible_push(lab, root / "ansible-pipelining", 6, pipelining=True)
        except (RuntimeError, subprocess.TimeoutExpired, TimeoutError) as exc:
            print(f"could not measure: {exc}", file=sys.stderr)
            return 1
        finally:
            photon_hosts.down(root / "hosts")
            shutil.rmtree(root / "ansible", ignore_errors=True)
    print(
        f"hosts={args.hosts} push_s={push_s:.2f} plan_s={plan_s:.2f} apply_s={apply_s:.2f} "
        f"bare_s={bare_s:.2f} bare_ratio={push_s / bare_s:.2f} apply_bare_ratio={apply_s / bare_s:.2f} "
        f"ansible_s={ansible_s:.2f} ratio={push_s / ansible_s:.2f} "
        f"ansible_pipelining_s={pipelined_s:.2f} ratio_pipelining={push_s / pipelined_s:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
