"""What a host has: its installed packages (``rpm -qa``) and its repositories
(``/etc/yum.repos.d/*.repo``), read over SSH and parsed here.

The query format prints one package a line, tab separated, the epoch as a number (rpm
prints ``(none)`` for a missing ``%{EPOCH}``). ``gpg-pubkey`` entries (imported signing
keys, arch ``(none)``) are not packages anyone updates and are left out.

Repository files are read as tdnf reads them (tdnf is what runs on Photon): an INI file per
file, ``$releasever`` and ``$basearch`` replaced in name, baseurl, metalink and mirrorlist,
a ``$`` followed by lowercase letters and digits naming a variable (so Photon's own
``photon_updates_$releasever_$basearch`` works), an unknown variable replaced by nothing.
On Photon ``$releasever`` is the version of the photon-release package; the portal takes
``VERSION_ID`` of /etc/os-release, which is the same ("5.0"). ``$basearch`` is ``uname -m``.
"""

from __future__ import annotations

import configparser
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

import asyncssh

from hosts import ssh
from hosts.patches.records import Nevra, RepoFileError

QUERY_FORMAT = r"%{NAME}\t%|EPOCH?{%{EPOCH}}:{0}|\t%{VERSION}\t%{RELEASE}\t%{ARCH}\n"
#: LC_ALL=C: rpm's messages in one language, whatever the login's locale.
RPM_COMMAND = f"LC_ALL=C rpm -qa --queryformat {shlex.quote(QUERY_FORMAT)}"
FACTS_COMMAND = '. /etc/os-release 2>/dev/null; printf \'%s\\n%s\\n\' "$VERSION_ID" "$(uname -m)"'
REPO_DIR = "/etc/yum.repos.d"
VARIABLE = re.compile(r"\$([0-9a-z]*)")
TRUE = {"1", "yes", "true", "on"}
FALSE = {"0", "no", "false", "off"}


class InstalledError(ValueError):
    """rpm's answer could not be read."""


@dataclass(frozen=True)
class Repo:
    """One repository of a host, variables already substituted."""

    id: str
    name: str
    baseurls: tuple[str, ...]
    metalink: str
    mirrorlist: str
    enabled: bool
    gpgcheck: bool
    skip_if_unavailable: bool
    file: str


@dataclass(frozen=True)
class HostPackages:
    installed: tuple[Nevra, ...]
    repos: tuple[Repo, ...]
    releasever: str
    basearch: str


def parse_rpm_output(text: str) -> list[Nevra]:
    packages = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 5 or not fields[1].isdigit():
            raise InstalledError(
                f"rpm's line {number} is not name, epoch, version, release, arch: {line[:200]!r}"
            )
        name, epoch, version, release, arch = fields
        if name == "gpg-pubkey" or arch == "(none)":
            continue
        packages.append(Nevra(name, int(epoch), version, release, arch))
    return packages


def substitute(text: str, variables: Mapping[str, str]) -> str:
    """tdnf's replace_vars: ``$name`` ([0-9a-z]*) -> its value, or "" when unknown."""
    return VARIABLE.sub(lambda m: variables.get(m.group(1), ""), text)


def _flag(value: str | None, default: bool, where: str) -> bool:
    if value is None:
        return default
    word = value.strip().lower()
    if word in TRUE:
        return True
    if word in FALSE:
        return False
    raise RepoFileError(f"{where}: {value!r} is neither yes nor no")


def parse_repo_file(text: str, *, file: str, releasever: str, basearch: str) -> list[Repo]:
    parser = configparser.ConfigParser(interpolation=None, strict=True, default_section="\x00")
    try:
        parser.read_string(text, source=file)
    except configparser.Error as exc:
        raise RepoFileError(f"{file}: {exc.message}") from None
    variables = {"releasever": releasever, "basearch": basearch}
    repos = []
    for section in parser.sections():
        values = parser[section]

        def get(key: str, values: configparser.SectionProxy = values) -> str:
            return substitute(values.get(key, "").strip(), variables)

        where = f"{file} [{section}]"
        # baseurl may list several mirrors, separated by commas or white space.
        baseurls = tuple(u for u in re.split(r"[\s,]+", get("baseurl")) if u)
        repos.append(
            Repo(
                id=section,
                name=get("name") or section,
                baseurls=baseurls,
                metalink=get("metalink"),
                mirrorlist=get("mirrorlist"),
                # tdnf's defaults (TDNF_REPO_DEFAULT_*), not dnf's: a repository is off unless enabled.
                enabled=_flag(values.get("enabled"), False, where),
                gpgcheck=_flag(values.get("gpgcheck"), True, where),
                skip_if_unavailable=_flag(values.get("skip_if_unavailable"), False, where),
                file=file,
            )
        )
    return repos


async def read_host(conn: asyncssh.SSHClientConnection) -> HostPackages:
    """Installed packages, repositories, releasever and basearch of the host on ``conn``."""
    result = await ssh.run(conn, RPM_COMMAND, timeout=120)
    if result.exit_status != 0:
        raise ssh.SSHError(f"rpm -qa failed: {ssh.output(result)[-500:]}")
    installed = parse_rpm_output(str(result.stdout or ""))
    facts = await ssh.run(conn, FACTS_COMMAND, timeout=30)
    releasever, _, basearch = str(facts.stdout or "").strip().partition("\n")
    repos: list[Repo] = []
    async with ssh.sftp_client(conn) as sftp:
        try:
            names = sorted(n for n in await sftp.listdir(REPO_DIR) if n.endswith(".repo"))
        except asyncssh.SFTPNoSuchFile:
            names = []
        files = await ssh.read_files(sftp, [f"{REPO_DIR}/{name}" for name in names])
    for path, remote in files.items():
        if remote.exists:
            text = remote.data.decode("utf-8", errors="replace")
            repos += parse_repo_file(
                text, file=path, releasever=releasever.strip(), basearch=basearch.strip()
            )
    return HostPackages(tuple(installed), tuple(repos), releasever.strip(), basearch.strip())


def enabled_urls(host: HostPackages) -> list[str]:
    """The base URL of each enabled repository (the first mirror), in file order.

    A repository given only by metalink or mirrorlist is left out: Photon's own use baseurl."""
    return [repo.baseurls[0] for repo in host.repos if repo.enabled and repo.baseurls]
