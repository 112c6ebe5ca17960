"""The audit trail's labels in templates: ``{{ entry.action|action_label }}``."""

from __future__ import annotations

from django import template

from portal import audit

register = template.Library()


@register.filter
def action_label(action: str) -> str:
    return audit.label_for(action)
