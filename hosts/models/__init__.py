"""The hosts app's models, one module per concern (add yours with one import line)."""

from __future__ import annotations

from .host import Host, HostStatus, Tag

__all__ = ["Host", "HostStatus", "Tag"]
