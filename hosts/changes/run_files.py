"""The files a host's card shows: each file the change manages there, with its diff, or
none when the plan found it already as wanted (a plan keeps only the files it changes)."""

from __future__ import annotations

from dataclasses import dataclass

from hosts.changes.desired import is_rotation
from hosts.changes.render import managed_paths
from hosts.models.changes import ChangeRun, RunState


@dataclass(frozen=True)
class RunFile:
    path: str
    #: The unified diff; "" when the file is already as wanted on this host.
    diff: str


def of(run: ChangeRun) -> list[RunFile]:
    planned = {str(f["path"]): str(f.get("diff") or "") for f in run.files}
    change = run.change
    # A host refused before its files were read, or never reached, says nothing of them; an
    # undo and a rotation write what they kept or made, not a profile's files.
    read = run.files or run.state not in (RunState.REFUSED, RunState.UNREACHABLE)
    if not read or change.reverts_id or is_rotation(change):
        return [RunFile(path, diff) for path, diff in planned.items()]
    managed = managed_paths(change.settings)
    return [RunFile(path, planned.get(path, "")) for path in managed] + [
        RunFile(path, diff) for path, diff in planned.items() if path not in managed
    ]
