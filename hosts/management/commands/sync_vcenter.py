"""Read a vCenter's inventory now, the way the portal's Sync button does (for scripts and cron)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hosts.models import VCenter
from hosts.vsphere import client as vsphere
from hosts.vsphere import tasks as vsphere_tasks


class Command(BaseCommand):
    help = "Sync one vCenter (by name or id), or every enabled one with --all; one summary line each."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("vcenter", nargs="?", help="the vCenter's name or id")
        parser.add_argument("--all", action="store_true", help="every enabled vCenter")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["vcenter"]
        if bool(name) == bool(options["all"]):
            raise CommandError("Name one vCenter, or give --all.")
        if options["all"]:
            vcenters = list(VCenter.objects.filter(enabled=True).order_by("name"))
        else:
            found = VCenter.objects.filter(name=name).first()
            if found is None and name.isdigit():
                found = VCenter.objects.filter(pk=int(name)).first()
            if found is None:
                known = ", ".join(VCenter.objects.order_by("name").values_list("name", flat=True)) or "none"
                raise CommandError(f"No vCenter {name!r}. Known: {known}.")
            vcenters = [found]
        failed = 0
        for vcenter in vcenters:
            # The task's own body, run here: the same pinned session, upserts and live announcements.
            try:
                result = vsphere_tasks.sync_vcenter.run(vcenter.pk)
            except Exception as exc:  # noqa: BLE001 - reported in the summary line and the exit code
                failed += 1
                self.stdout.write(f"{vcenter.name}: FAILED: {vsphere.describe_failure(exc)}")
                continue
            self.stdout.write(
                f"{vcenter.name}: {result['vms']} VMs, {result['created']} new, {result['gone']} gone"
            )
        if failed:
            raise CommandError(f"{failed} of {len(vcenters)} vCenter(s) could not be read.")
