"""How VMs are offered to pick from (the request form's templates, a quota's extra
templates): in natural order (VM2 before VM10), each labelled with its vCenter and
datacenter when the list spans several, so two "photon-5" can be told apart."""

from __future__ import annotations

import re
from collections.abc import Iterable

from hosts.models import VirtualMachine

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """``VM2`` < ``VM10``: runs of digits compare as numbers, the rest case-insensitively.
    Each part is tagged (0: text, 1: number) so a number never meets a string."""
    return tuple(
        (1, int(part)) if part.isdigit() else (0, part.lower()) for part in _DIGITS.split(name) if part
    )


def choices(vms: Iterable[VirtualMachine]) -> list[tuple[int, str]]:
    """``vms`` as (pk, label) choices, naturally ordered; select ``vcenter`` and ``datacenter``."""
    found = sorted(vms, key=lambda vm: (natural_key(vm.name), natural_key(vm.vcenter.name), vm.pk))
    several_vcenters = len({vm.vcenter_id for vm in found}) > 1
    several_datacenters = len({vm.datacenter_id for vm in found}) > 1

    def label(vm: VirtualMachine) -> str:
        where = [vm.vcenter.name] if several_vcenters else []
        if several_datacenters and vm.datacenter is not None:
            where.append(vm.datacenter.name)
        return f"{vm.name} ({' / '.join(where)})" if where else vm.name

    return [(vm.pk, label(vm)) for vm in found]
