"""Template helpers for configuration changes: a diff's lines with the risky ones marked, a
host card's files, what applying does to each service."""

from __future__ import annotations

from typing import Any

from django import template

from hosts.changes import desired, reloads
from hosts.changes import run_files as change_run_files
from hosts.changes.diff_risk import DiffLine, mark
from hosts.models.changes import ChangeRun

register = template.Library()


@register.filter
def diff_lines(diff: str) -> list[DiffLine]:
    """``{% for line in file.diff|diff_lines %}``: each line, with ``reason`` when risky."""
    return mark(str(diff or ""))


@register.filter
def risk_reasons(files: list[dict[str, Any]]) -> list[str]:
    """The distinct reasons of a run's risky lines (secret files are never shown, so never read)."""
    reasons = [
        line.reason for f in files or [] if not f.get("secret") for line in mark(str(f.get("diff") or ""))
    ]
    return list(dict.fromkeys(r for r in reasons if r))


@register.filter
def run_files(run: ChangeRun) -> list[change_run_files.RunFile]:
    """``{% for file in run|run_files %}``: each managed file, its diff "" when already as wanted."""
    return change_run_files.of(run)


@register.filter
def service_actions(restarts: list[str]) -> list[str]:
    """``{% for action in run.restarts|service_actions %}``: what applying does to each service,
    shown before approval: "reloads sshd", "restarts docker"."""
    return [reloads.action(str(entry)) for entry in restarts or []]


@register.filter
def managed_files(settings: Any) -> list[str]:
    """The files a profile's settings manage on a host, in the order of its sections."""
    if not isinstance(settings, dict):
        return []
    return [path for name, path in desired.SECTIONS.items() if name in settings]
