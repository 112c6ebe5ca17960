"""Rotate hosts' credentials (their SSH key and Docker client CA) through the change flow.

``manage.py rotate_credentials HOST [HOST ...] --user U`` or ``--all --user U`` plans one
rotation per project (hosts.changes.rotation); with --apply, and a user who may approve, it applies
them and waits. As in the portal, a Provisioner's plan waits for a Project admin.
Prints one summary line; the exit code says how it went (as ``manage.py change``).
"""

from __future__ import annotations

from collections import Counter
from itertools import groupby
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hosts.changes import approval as change_approval
from hosts.changes import errors, rotation, runs
from hosts.changes import tasks as change_tasks
from hosts.management.change_commands import (
    AWAITING,
    BAD_STATES,
    FAILED,
    REFUSED,
    acting_user,
    add_acting_arguments,
    wait_settled,
)
from hosts.models import Host
from hosts.models.changes import Change, ChangeStatus, RunState
from portal.queueing import QueueUnavailable


class Command(BaseCommand):
    help = "Rotate hosts' credentials through plan/approve/apply; one summary line, meaningful exit code."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("hosts", nargs="*", help="host names (or ids)")
        parser.add_argument("--all", action="store_true", help="every host the user may plan changes for")
        add_acting_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        user = acting_user(options["user"])
        if bool(options["all"]) == bool(options["hosts"]):
            raise CommandError("Name the hosts, or give --all (not both).", returncode=REFUSED)
        hosts = list(rotation.rotatable(user)) if options["all"] else self._hosts(user, options["hosts"])
        if not hosts:
            raise CommandError(f"{user} may rotate no host's credentials.", returncode=REFUSED)
        created: list[Change] = []
        for _project, group in groupby(hosts, key=lambda h: h.project_id):
            targets = list(group)
            try:
                change = rotation.start(targets, user)
            except errors.ChangeError as exc:
                raise CommandError(f"{exc}.", returncode=REFUSED) from None
            # The plan task's own body, run here: the script waits for it anyway.
            change_tasks.plan_change.run(change.pk, [h.pk for h in targets])
            change.refresh_from_db()
            created.append(change)
        if not options["apply"]:
            self._finish(created, "planned")
            return
        if any(c.status == ChangeStatus.AWAITING_APPROVAL for c in created):
            self._finish(created, "planned, awaiting a Project admin's approval", code=AWAITING)
            return
        for change in created:
            if any(run.state in runs.RUNNABLE for run in change.runs.all()):
                try:
                    change_approval.start_apply(change, user)
                except (errors.ChangeError, QueueUnavailable) as exc:
                    raise CommandError(f"change {change.pk}: {exc}", returncode=FAILED) from None
        if not wait_settled(created, options["timeout"]):
            self._finish(created, f"still applying after {options['timeout']:.0f} s", code=FAILED)
            return
        for change in created:
            change.refresh_from_db()
        done = all(c.status == ChangeStatus.APPLIED for c in created)
        self._finish(created, "rotated" if done else "not rotated everywhere")

    def _hosts(self, user: Any, names: list[str]) -> list[Host]:
        allowed = rotation.rotatable(user)
        found: list[Host] = []
        for name in dict.fromkeys(names):
            matches = list(allowed.filter(name=name)) or (
                list(allowed.filter(pk=int(name))) if name.isdigit() else []
            )
            if not matches:
                raise CommandError(
                    f"No host {name!r} whose credentials {user} may rotate.", returncode=REFUSED
                )
            if len(matches) > 1:
                where = ", ".join(f"{h.project.name} (id {h.pk})" for h in matches)
                raise CommandError(
                    f"Host {name!r} is in several projects ({where}): give its id.", returncode=REFUSED
                )
            found.append(matches[0])
        return sorted({h.pk: h for h in found}.values(), key=lambda h: (h.project.name, h.project_id, h.name))

    def _finish(self, created: list[Change], outcome: str, code: int | None = None) -> None:
        states: Counter[str] = Counter()
        for change in created:
            states.update(change.runs.values_list("state", flat=True))
        counts = ", ".join(f"{n} {RunState(s).label.lower()}" for s, n in sorted(states.items()))
        ids = ", ".join(f"{c.pk} ({c.status})" for c in created)
        self.stdout.write(f"rotation change(s) {ids}: {outcome}; {sum(states.values())} host(s): {counts}")
        if code is None and any(states[s] for s in BAD_STATES):
            code = FAILED
        if code:
            raise SystemExit(code)
