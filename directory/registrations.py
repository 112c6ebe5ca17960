"""How the directory app plugs into the core: its watcher (the periodic sync), its task,
and the message the login page shows when the directory fails during a sign-in."""

from __future__ import annotations

from django_auth_ldap.backend import ldap_error

from portal import expiry, project_sections, watchers

from . import expiring, project_groups, tasks, watch
from .backend import DirectoryBackend, directory_unreachable

#: Imported for Celery: its task is registered on import.
TASK_MODULES = (tasks,)


def register() -> None:
    watchers.register("directory", watch.watch_directory)
    # The pinned CA, warned of before it lapses (portal.expiry).
    expiry.register(expiring.server_ca)
    project_sections.register(
        project_sections.Section("directory/project_groups.html", project_groups.section)
    )
    ldap_error.connect(directory_unreachable, sender=DirectoryBackend, dispatch_uid="directory-unreachable")
