"""The command lines a patch change runs on a host, built by the portal from a plan.

Photon updates with tdnf; a host without it (the lab's, which runs Debian's dnf as tdnf's
stand-in) gets dnf with the same arguments. Which one a host has is asked on the host
(:data:`DETECT`), never assumed.

**Exact versions.** Every package is named by its full NEVRA (``name-[epoch:]version-release.arch``,
as :class:`.records.Nevra` prints it): ``update`` given a NEVRA moves that package to exactly
that build, where a bare name would take whatever is newest when the command runs (a
repository may have published another since the plan). Rollback names the recorded NEVRAs
the same way: ``downgrade`` (the recorded build is older), ``install`` (it was removed),
``remove`` (the update brought a package in).

**Options.** ``-y``: nobody answers. ``--releasever``: the value the portal read from the host
(VERSION_ID of /etc/os-release, what tdnf derives from photon-release), so both tools expand the
.repo files' ``$releasever`` as the portal did when it planned. dnf only:
``--setopt=install_weak_deps=False`` (tdnf installs no weak dependencies; dnf would pull
Recommends in, packages the plan does not list) and ``--noplugins`` (dnf's plugins are not
tdnf's). ``LC_ALL=C``: the error text reported is in one language.

**Untrusted names.** A package name comes from a repository's metadata, which the portal does not
control: every word is ``shlex.quote``d, and a name that could be read as an option (a leading
``-``) or holds a control character is refused outright (:class:`CommandError`).

Nothing here reads what the tool prints: the outcome is judged from rpm's database
(:mod:`.apply`).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable

from hosts.patches.plan import HostPatchPlan
from hosts.patches.records import Nevra

#: The path of tdnf, or of dnf when there is no tdnf; nothing and a non-zero exit when neither.
DETECT = "command -v tdnf || command -v dnf"
TOOLS = ("tdnf", "dnf")


class CommandError(ValueError):
    """A command the portal will not build; the message is fit to show a person."""


def tool_from_path(path: str) -> str:
    """``/usr/bin/tdnf`` -> ``tdnf`` (what :data:`DETECT` printed), or CommandError."""
    name = path.strip().rpartition("/")[2]
    if name not in TOOLS:
        raise CommandError("neither tdnf nor dnf is installed on the host")
    return name


def package_word(nevra: Nevra) -> str:
    """The NEVRA as one shell word; CommandError for a name that could be an option."""
    text = str(nevra)
    if text.startswith("-") or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise CommandError(f"refusing the package name {text!r} from the repository")
    return shlex.quote(text)


def _base(tool: str, releasever: str) -> list[str]:
    if tool not in TOOLS:
        raise CommandError(f"unknown package tool {tool!r}")
    words = ["LC_ALL=C", tool, "-y"]
    if releasever:
        words.append(shlex.quote(f"--releasever={releasever}"))
    if tool == "dnf":
        words += ["--setopt=install_weak_deps=False", "--noplugins"]
    return words


def _command(tool: str, releasever: str, verb: str, packages: Iterable[Nevra]) -> str:
    words = [package_word(p) for p in packages]
    if not words:
        raise CommandError(f"nothing to {verb}")
    return " ".join([*_base(tool, releasever), verb, *words])


def command_for(plan: HostPatchPlan, tool: str, releasever: str = "") -> str:
    """The update that moves exactly the plan's packages to the planned builds."""
    return _command(tool, releasever, "update", (t.target for t in plan.transitions))


def downgrade_command(tool: str, releasever: str, packages: Iterable[Nevra]) -> str:
    return _command(tool, releasever, "downgrade", packages)


def install_command(tool: str, releasever: str, packages: Iterable[Nevra]) -> str:
    return _command(tool, releasever, "install", packages)


def remove_command(tool: str, releasever: str, packages: Iterable[Nevra]) -> str:
    return _command(tool, releasever, "remove", packages)
