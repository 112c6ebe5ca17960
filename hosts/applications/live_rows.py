"""An application's containers live on its page: when the engines watcher sees one of them
change (hosts.fleet.container_rows calls ``on_container``), its row is sent again to the
application's topic, from the same engine answer the host page's row came from."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string

from hosts.applications import engine_deploy as engine_apps
from hosts.applications import engine_view, tasks
from hosts.applications.engine_spec import PROJECT
from hosts.fleet.containers import ContainerSummary
from hosts.models import Application, Host
from portal import live


def on_container(host: Host, container_id: str, summary: ContainerSummary | None, sdk: Any) -> None:
    """A container of ``host`` changed: its row, to the page of the application it belongs to."""
    project = (summary.labels if summary is not None else {}).get(PROJECT)
    if not project:
        return  # not a Compose project's (or removed: the task that removed it sends the table)
    application = (
        Application.objects.filter(name=project, project_id=host.project_id)
        .exclude(state=Application.State.REMOVED)
        .first()
    )
    if application is None:
        return
    found = engine_apps.one(host.pk, sdk, container_id)
    if found is None:
        return
    view = engine_view.EngineView(
        containers=[found], names={host.pk: host.name}, addresses=engine_view.address_of(host)
    )
    (row,) = view.rows
    html = render_to_string("hosts/apps/container_row.html", {"row": row})
    live.publish(tasks.topic(application), html=html, data={"container": container_id, "state": row[0].state})
