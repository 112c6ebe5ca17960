"""Kernel parameters: the portal's own file under /etc/sysctl.d, applied with ``sysctl -p``.

A file of its own rather than /etc/sysctl.conf: Photon keeps that one for the
distribution's defaults. Lines the portal does not manage (comments, other keys,
``-`` prefixed ones) are kept; a managed key is set where it already is, or
appended.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hosts.changes.files import SettingsError

PATH = "/etc/sysctl.d/90-photon-portal.conf"
HEADER = "# Kernel parameters managed by Photon Portal: edit the profile, not this file.\n"
MAX_KEYS = 64
_KEY = re.compile(r"^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$")
_VALUE = re.compile(r"^[\w.:/ -]{1,256}$")
_LINE = re.compile(r"^(\s*-?)([^=#;\s]+)(\s*=\s*)(.*?)\s*$")

# Which parameters a profile may set: an allowlist, because the kernel has parameters
# that are root on the host (they name a program the kernel runs as root, or switch off
# a protection) and new ones come with new kernels. What is on it only tunes networking,
# memory and limits:
#   net.ipv4.*, net.ipv6.*, net.core.*   networking (buffers, forwarding, TCP tuning)
#   net.netfilter.nf_conntrack_*         connection tracking sizes and timeouts
#   net.bridge.bridge-nf-call-*          bridged traffic through iptables (Docker wants it)
#   net.unix.max_dgram_qlen              unix socket queue length
#   vm.*                                 memory (minus NEVER below)
#   fs.inotify.*, fs.file-max, fs.nr_open, fs.aio-max-nr      file and watch limits
#   kernel.pid_max, kernel.threads-max, kernel.shm*, kernel.msg*, kernel.sem,
#   kernel.panic, kernel.panic_on_oops                        limits and panic behaviour
# Anything else (kernel.*, fs.protected_*, fs.suid_dumpable, user.*, dev.*, debug.*, ...)
# is refused until someone adds it here with a reason.
FAMILIES = (
    "net.ipv4.",
    "net.ipv6.",
    "net.core.",
    "net.netfilter.nf_conntrack_",
    "net.bridge.bridge-nf-call-",
    "vm.",
    "fs.inotify.",
)
KEYS = frozenset(
    {
        "net.unix.max_dgram_qlen",
        "fs.file-max",
        "fs.nr_open",
        "fs.aio-max-nr",
        "kernel.pid_max",
        "kernel.threads-max",
        "kernel.shmmax",
        "kernel.shmall",
        "kernel.shmmni",
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.panic",
        "kernel.panic_on_oops",
    }
)
#: Never, even inside a family above (checked first, by prefix): the reason is the message.
NEVER = {
    "kernel.modprobe": "the kernel runs that program as root to load a module",
    "kernel.core_pattern": "a |pipe there makes the kernel run a program as root on every crash",
    "kernel.usermodehelper": "it decides what the kernel may run as root on its own",
    "kernel.poweroff_cmd": "the kernel runs that program as root on power off",
    "kernel.hotplug": "the kernel runs that program as root on every device event",
    "fs.binfmt_misc": "it registers interpreters the kernel runs for matching files",
    "fs.suid_dumpable": "it lets set-user-ID programs leave core dumps holding root's memory",
    "vm.mmap_min_addr": "lowering it reopens kernel NULL-pointer exploits",
    "vm.unprivileged_userfaultfd": "it hands every user a tool of kernel exploits",
}


def refusal(key: str) -> str:
    """Why ``key`` may not be set by a profile ("" when it may)."""
    for prefix, reason in NEVER.items():
        if key.startswith(prefix):
            return f"{key} is never set by the portal: {reason}"
    if key in KEYS or key.startswith(FAMILIES):
        return ""
    return (
        f"{key} is not on the portal's list of kernel parameters (networking, memory and limits: "
        "net.ipv4.*, net.ipv6.*, net.core.*, vm.*, fs.inotify.*, fs.file-max, kernel.pid_max and a few more)"
    )


def normalize(desired: Mapping[str, Any]) -> dict[str, str]:
    if len(desired) > MAX_KEYS:
        raise SettingsError(f"at most {MAX_KEYS} kernel parameters per profile", key="sysctl")
    values: dict[str, str] = {}
    for key, value in desired.items():
        key = str(key).strip()
        if not _KEY.match(key):
            raise SettingsError(f"{key!r} is not a kernel parameter name (like net.ipv4.ip_forward)", key=key)
        refused = refusal(key)
        if refused:
            raise SettingsError(refused, key=key)
        text = str(value).strip() if not isinstance(value, bool) else str(int(value))
        if not _VALUE.match(text):
            raise SettingsError(
                f"the value of {key} must be one line of letters, digits and . : - _", key=key
            )
        if "/" in text:
            # No parameter on the list takes a path; one that does names something to run or read.
            raise SettingsError(f"the value of {key} cannot be a path: {text}", key=key)
        values[key] = " ".join(text.split())
    return values


def render(current: str, desired: Mapping[str, Any]) -> str:
    values = normalize(desired)
    if not values:
        return current
    lines = current.splitlines(keepends=True) if current else [HEADER]
    pending = dict(values)
    for i, line in enumerate(lines):
        found = _LINE.match(line.rstrip("\n"))
        if found and found[2] in pending:
            value = pending.pop(found[2])
            if found[4] != value:
                lines[i] = f"{found[1]}{found[2]}{found[3]}{value}\n"
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    lines += [f"{key} = {value}\n" for key, value in pending.items()]
    return "".join(lines)


def keys_of(text: str) -> list[str]:
    """The keys a sysctl.d file sets (comments and blank lines aside)."""
    return [found[2] for line in text.splitlines() if (found := _LINE.match(line))]


def proc_path(key: str) -> str:
    """Where the kernel shows ``key``."""
    return "/proc/sys/" + key.replace(".", "/")
