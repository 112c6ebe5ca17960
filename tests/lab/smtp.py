"""A real SMTP server for the lab: aiosmtpd on a loopback port, in a process of its own,
writing each message it accepts to ``workdir/mail/NNNN.eml`` (written whole, then renamed:
a reader never sees half a message).

``python -m tests.lab.smtp --port P --dir D`` runs it; ``up``/``down`` start and stop it as the
other peers are (tests.lab.common). No root needed.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import itertools
import signal
import threading
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from tests.lab import common

NAME = "smtp"


class _Keeper:
    """aiosmtpd's handler: every message accepted is written to the directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.numbers = itertools.count(1)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        number = next(self.numbers)
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        rcpt = ", ".join(envelope.rcpt_tos)
        head = f"X-Lab-Mail-From: {envelope.mail_from}\r\nX-Lab-Rcpt-To: {rcpt}\r\n".encode()
        tmp = self.directory / f".{number:04d}.tmp"
        tmp.write_bytes(head + data)
        tmp.rename(self.directory / f"{number:04d}.eml")
        return "250 Message accepted for delivery"


def serve(port: int, directory: Path) -> None:
    from aiosmtpd.controller import Controller

    directory.mkdir(parents=True, exist_ok=True)
    controller = Controller(_Keeper(directory), hostname="127.0.0.1", port=port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


def up(workdir: Path) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    maildir = workdir / "mail"
    maildir.mkdir(exist_ok=True)
    port = common.serve_python(
        NAME, "tests.lab.smtp", workdir, ["--dir", str(maildir)], "the lab SMTP server"
    )
    return {"host": "127.0.0.1", "port": port, "maildir": str(maildir)}


def down(workdir: Path) -> None:
    common.stop_spawned(workdir, NAME)


def messages(info: dict[str, Any]) -> list[EmailMessage]:
    """The messages received so far, oldest first."""
    found = []
    for path in sorted(Path(info["maildir"]).glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    arguments = parser.parse_args()
    serve(arguments.port, arguments.dir)
