"""How a provisioning request goes, told by its VMs: a request keeps no state of its own."""

from __future__ import annotations

from dataclasses import dataclass

from hosts.models import ProvisionedVm, ProvisionRequest


@dataclass(frozen=True)
class RequestSummary:
    """How a provisioning request goes, told by its VMs (it keeps no state of its own)."""

    status: str  # running | done | failed | partial
    label: str
    progress: int  # 0..100


_ENDED = {ProvisionedVm.State.ENROLLED, ProvisionedVm.State.FAILED, ProvisionedVm.State.CANCELLED}
# How far along a VM in each state is, in percent: the request's progress is their mean.
# Keyed by str: states arrive as plain strings, and a State is one.
_PROGRESS: dict[str, int] = {
    ProvisionedVm.State.QUEUED: 0,
    ProvisionedVm.State.CLONING: 25,
    ProvisionedVm.State.POWERING_ON: 50,
    ProvisionedVm.State.WAITING: 75,
    ProvisionedVm.State.ENROLLED: 100,
    ProvisionedVm.State.FAILED: 100,
    ProvisionedVm.State.CANCELLED: 100,
}


def summary(request: ProvisionRequest, states: list[str] | None = None) -> RequestSummary:
    """``request``'s status from its VMs' ``states`` (read from ``request.vms`` when not given:
    prefetch ``vms`` on lists, or pass the states, so a page does not query once per row)."""
    if states is None:
        states = [vm.state for vm in request.vms.all()]
    if not states:
        # Its VMs are made in the transaction that saves it: a request without any will
        # never make a host, and must not look as if it were still going.
        return RequestSummary("failed", "No hosts", 100)
    # Rounded down: a request still running never shows 100.
    progress = sum(_PROGRESS.get(s, 0) for s in states) // len(states)
    enrolled = states.count(ProvisionedVm.State.ENROLLED)
    if any(s not in _ENDED for s in states):
        # Not ended, a state this code does not know included: better "running" than a wrong outcome.
        return RequestSummary("running", "Running", progress)
    if enrolled == len(states):
        return RequestSummary("done", "Enrolled", 100)
    if enrolled == 0:
        # Nothing came of it: "failed" to My work's buckets, but cancelled says it was meant.
        cancelled = all(s == ProvisionedVm.State.CANCELLED for s in states)
        return RequestSummary("failed", "Cancelled" if cancelled else "Failed", 100)
    return RequestSummary("partial", f"Partly enrolled ({enrolled} of {len(states)})", 100)
