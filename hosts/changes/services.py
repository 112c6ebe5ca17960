"""What people ask of configuration changes that the UI and the API both call. Deciding on
and applying a change are ``hosts.changes.approval``'s and undoing one ``revert``'s; each
raises ``ChangeError``, a ``portal.refused.Refused``."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from hosts.changes import desired, planning, tasks
from hosts.changes.errors import ChangeError
from hosts.models.changes import Change, Profile
from portal.refused import Refused


def request_plan(profile: Profile, user: Any, chosen: Collection[int] = ()) -> Change:
    """Plan ``profile`` on its hosts (or the ``chosen`` ones among them): a new change, read
    and rendered in a task (SSH reads only)."""
    targets = desired.hosts_of(profile)
    if chosen:
        strangers = set(chosen) - {h.pk for h in targets}
        if strangers:
            raise Refused(f"Not hosts of this profile: {sorted(strangers)}.", field="hosts", status=400)
        targets = [h for h in targets if h.pk in chosen]
    if not targets:
        raise Refused("This profile has no hosts: assign hosts or tags first.", field="hosts", status=400)
    try:
        change = planning.profile_change(profile, user)
    except ChangeError as exc:
        # A profile stored before a rule existed: refused before any host is read.
        raise ChangeError(str(exc), exc.problems, field="settings", status=400) from None
    tasks.plan_change.delay(change.pk, [h.pk for h in targets])
    return change
