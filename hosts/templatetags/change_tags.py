"""Template helpers for configuration changes: a diff's lines with the risky ones marked."""

from __future__ import annotations

from typing import Any

from django import template

from hosts.changes.diff_risk import DiffLine, mark

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
