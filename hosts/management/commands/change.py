"""Plan (and with --apply, apply) a profile on a set of hosts, for scripts.

It acts as the person named with --user and asks portal.access like the UI: a
Provisioner's plan waits for a Project admin's approval, exactly as in the portal.
The flow, the tasks and the audit trail are the portal's own (hosts.changes: planning, approval, apply).
Prints one summary line; the exit code says how it went.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hosts.changes import approval as change_approval
from hosts.changes import desired, errors, planning, runs
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
from hosts.models.changes import Change, ChangeStatus, Profile, RunState
from portal import access
from portal.queueing import QueueUnavailable


class Command(BaseCommand):
    help = "Plan a profile on hosts (and apply it with --apply); one summary line, meaningful exit code."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("profile", help="the profile's name (or id)")
        parser.add_argument("--project", help="the profile's project, when its name is not unique")
        parser.add_argument(
            "--hosts", default="", help="comma-separated host names; default: all of the profile's"
        )
        add_acting_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        user = acting_user(options["user"])
        profile = self._profile(user, options["profile"], options["project"])
        if not access.can(user, "change.plan", profile.project_id):
            raise CommandError(f"{user} may not plan changes in {profile.project}.", returncode=REFUSED)
        targets = desired.hosts_of(profile)
        wanted = {name.strip() for name in options["hosts"].split(",") if name.strip()}
        if wanted:
            unknown = wanted - {h.name for h in targets}
            if unknown:
                raise CommandError(
                    f"Not hosts of profile {profile.name}: {', '.join(sorted(unknown))}.", returncode=REFUSED
                )
            targets = [h for h in targets if h.name in wanted]
        if not targets:
            raise CommandError(
                f"Profile {profile.name} has no hosts: assign hosts or tags first.", returncode=REFUSED
            )
        try:
            change = planning.profile_change(profile, user)
        except errors.ChangeError as exc:
            raise CommandError(f"{exc}.", returncode=REFUSED) from None
        # The plan task's own body, run here: the script waits for it anyway.
        change_tasks.plan_change.run(change.pk, [h.pk for h in targets])
        change.refresh_from_db()
        if not options["apply"]:
            self._finish(change, "planned")
            return
        if change.status == ChangeStatus.AWAITING_APPROVAL:
            self._finish(change, "planned, awaiting a Project admin's approval", code=AWAITING)
            return
        if not any(run.state in runs.RUNNABLE for run in change.runs.all()):
            self._finish(change, "planned, nothing to apply")
            return
        try:
            change_approval.start_apply(change, user)
        except (errors.ChangeError, QueueUnavailable) as exc:
            raise CommandError(f"change {change.pk}: {exc}", returncode=FAILED) from None
        if not wait_settled([change], options["timeout"]):
            self._finish(change, f"still applying after {options['timeout']:.0f} s", code=FAILED)
            return
        change.refresh_from_db()
        self._finish(
            change, "applied" if change.status == ChangeStatus.APPLIED else change.get_status_display()
        )

    def _profile(self, user: Any, name: str, project: str | None) -> Profile:
        profiles = Profile.objects.filter(project__in=access.projects(user, "change.view")).select_related(
            "project"
        )
        if project:
            profiles = profiles.filter(project__name=project)
        found = list(profiles.filter(name=name)) or (
            list(profiles.filter(pk=int(name))) if name.isdigit() else []
        )
        if not found:
            raise CommandError(f"No profile {name!r} that {user} may see.", returncode=REFUSED)
        if len(found) > 1:
            where = ", ".join(p.project.name for p in found)
            raise CommandError(
                f"Profile {name!r} is in several projects ({where}): give --project.", returncode=REFUSED
            )
        return found[0]

    def _finish(self, change: Change, outcome: str, code: int | None = None) -> None:
        states = Counter(change.runs.values_list("state", flat=True))
        counts = ", ".join(f"{n} {RunState(s).label.lower()}" for s, n in sorted(states.items()))
        self.stdout.write(
            f"change {change.pk} ({change.status}): {outcome}; {sum(states.values())} host(s): {counts}"
        )
        if code is None and any(states[s] for s in BAD_STATES):
            code = FAILED
        if code:
            raise SystemExit(code)
