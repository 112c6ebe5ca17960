"""Plan or deploy an application template, for scripts:
``manage.py app deploy TEMPLATE --project P --user U [--var K=V ...] [--name N] [--host H]``.

It acts as the person named with --user and asks the same service functions as the pages and
the API (hosts.applications.deployments), so the same roles, quotas of the plan and refusals
hold. ``plan`` prints where each replica would go and why, and starts nothing; ``deploy`` plans,
deploys, and waits for the deploy to end. Exit code: 0 done, 1 the deploy failed, 2 refused.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from hosts.applications import catalog, deployments
from hosts.management.change_commands import FAILED, POLL_SECONDS, REFUSED, acting_user
from hosts.models import Application, AppTemplate
from portal.refused import Refused

BUSY = (Application.State.QUEUED, Application.State.DEPLOYING)


class Command(BaseCommand):
    help = "Plan or deploy an application template as a portal user; meaningful exit code."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["plan", "deploy"])
        parser.add_argument("template", help="the template's name (or id)")
        parser.add_argument("--project", help="the template's project, when its name is not unique")
        parser.add_argument("--user", required=True, help="act as this portal user (their role decides)")
        parser.add_argument("--var", action="append", default=[], metavar="K=V", help="a variable's value")
        parser.add_argument("--name", help="the Compose project name (default: the template's, lowercased)")
        parser.add_argument(
            "--host", default="", help="every service on this host (default: placed by rules)"
        )
        parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the deploy")

    def handle(self, *args: Any, **options: Any) -> None:
        user = acting_user(options["user"])
        template = self._template(user, options["template"], options["project"])
        values = {}
        for pair in options["var"]:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise CommandError(f"--var {pair!r}: give it as NAME=value.", returncode=REFUSED)
            values[key] = value
        name = options["name"] or template.name.lower()
        try:
            proposal = deployments.propose(user, template, name=name, values=values, one_host=options["host"])
            for p in proposal.plan.placements:
                self.stdout.write(f"{p.service}-{p.replica} -> {p.host}: {p.reason}")
            if not proposal.plan.ok:
                raise CommandError(f"The plan does not fit: {proposal.plan.failure}", returncode=REFUSED)
            if options["action"] == "plan":
                return
            application = deployments.deploy(user, proposal)
        except Refused as exc:
            raise CommandError(" ".join([exc.message, *exc.details]), returncode=REFUSED) from None
        except PermissionDenied:
            raise CommandError(f"{user} may not deploy in {template.project}.", returncode=REFUSED) from None
        deadline = time.monotonic() + options["timeout"]
        while Application.objects.filter(pk=application.pk, state__in=BUSY).exists():
            if time.monotonic() > deadline:
                raise CommandError(
                    f"{name}: still deploying after {options['timeout']:.0f} s.", returncode=FAILED
                )
            time.sleep(POLL_SECONDS)  # the deploy runs in a task; its row is where it reports
        application.refresh_from_db()
        if application.state != Application.State.RUNNING:
            raise CommandError(f"{name}: {application.outcome or application.state}", returncode=FAILED)
        self.stdout.write(f"{name}: deployed ({len(proposal.plan.placements)} containers).")

    def _template(self, user: Any, wanted: str, project: str | None) -> AppTemplate:
        found = catalog.visible(user)
        if project:
            found = found.filter(project__name=project)
        matches = list(found.filter(pk=int(wanted)) if wanted.isdigit() else found.filter(name=wanted))
        if not matches:
            raise CommandError(f"No template {wanted!r} that {user} may see.", returncode=REFUSED)
        if len(matches) > 1:
            raise CommandError(f"Several templates named {wanted!r}: give --project.", returncode=REFUSED)
        return matches[0]
