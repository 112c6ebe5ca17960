"""What the portal manages on a host: one pure renderer per configurable thing.

Each renderer turns the current text of one file and the desired settings into
the new text, keeping everything it does not own (comments, order, other
directives), and raises ``SettingsError`` with a message a person can act on
when a desired value is invalid. Nothing here touches a host.

The portal logs in as root, so a profile value is root on the host: each
renderer also refuses what would hand root (or the host's secrets) to whoever
writes a profile, and says why. Those rules live in the renderers themselves so
that nothing can render a refused value, whatever path it came by.
"""

from __future__ import annotations


class SettingsError(ValueError):
    """A desired setting is invalid; the message says which and why.

    ``key`` names the setting at fault (``Banner``, ``insecure-registries``, a
    kernel parameter) when there is one, so a form can put the message there.
    """

    def __init__(self, message: str, *, key: str = "") -> None:
        super().__init__(message)
        self.key = key
