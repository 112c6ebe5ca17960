"""What the portal manages on a host: one pure renderer per configurable thing.

Each renderer turns the current text of one file and the desired settings into
the new text, keeping everything it does not own (comments, order, other
directives), and raises ``SettingsError`` with a message a person can act on
when a desired value is invalid. Nothing here touches a host.
"""

from __future__ import annotations


class SettingsError(ValueError):
    """A desired setting is invalid; the message says which and why."""
