"""Waiting for a vSphere task to end, by WaitForUpdatesEx on its info (no polling): its
progress handed to the caller as it moves, its fault raised as the portal's words."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from hosts.vsphere import client as vsphere
from hosts.vsphere import faults as vsphere_faults
from hosts.vsphere.client import collector as vsphere_collector


def wait_for_task(
    si: vsphere.ServiceInstance,
    vtask: Any,
    timeout: float,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Return when ``vtask`` succeeds; raise its fault when it fails, TimeoutError after ``timeout`` s."""
    pc = vsphere_collector.watch_task(si, vtask)
    version = ""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            answer = vsphere_collector.wait_for_updates(si, pc, version, 10)
            if answer is None:
                continue
            version, changes = answer
            for change in changes:
                props = change.changes
                moved = props.get("info.progress")
                if progress is not None and isinstance(moved, int):
                    progress(moved)
                state = props.get("info.state")
                if state == "success":
                    return
                if state == "error":
                    raise vsphere_faults.from_task_error(props.get("info.error"))
        raise TimeoutError(f"the vSphere task did not finish within {timeout:.0f} s")
    finally:
        vsphere_collector.destroy(pc)
