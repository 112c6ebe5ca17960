"""A small fleet for the patch status tests: installed packages per host (read by a stand-in
for SSH), and one repository served in memory (tests.patches.repos) with advisories of every
kind, so what each host should count is known by hand, not recomputed."""

from __future__ import annotations

from typing import Any

from hosts import ssh
from hosts.models import Host
from hosts.patches.installed import HostPackages, Repo
from portal.models import Project
from tests.patches import repos
from tests.patches.repos import Adv, nevra

REPO = Repo(
    id="photon-updates",
    name="Photon updates",
    baseurls=(repos.BASE,),
    metalink="",
    mirrorlist="",
    enabled=True,
    gpgcheck=True,
    skip_if_unavailable=False,
    file="/etc/yum.repos.d/photon-updates.repo",
)
DISABLED = Repo(
    "photon-extras", "Extras", ("http://repo.test/extras/",), "", "", False, True, False, REPO.file
)

OLD = ["openssl-3.0.8-1.ph5", "linux-6.1.10-1.ph5", "curl-8.1-1.ph5", "vim-9.0-1.ph5", "tdnf-3.5-1.ph5"]
NEW = ["openssl-3.0.8-2.ph5", "linux-6.1.11-1.ph5", "curl-8.1-2.ph5", "vim-9.0-2.ph5", "tdnf-3.5-2.ph5"]
ADVISORIES = [
    Adv("PHSA-2026-0001", "security", "Critical", [nevra(NEW[0])], ["CVE-2026-0001", "CVE-2026-0002"]),
    Adv("PHSA-2026-0002", "security", "Important", [nevra(NEW[1])], ["CVE-2026-0003"], reboot={"linux"}),
    Adv("PHSA-2026-0003", "security", "Important", [nevra(NEW[2])], ["CVE-2026-0002"]),
    # Fixes nothing installed anywhere below: never pending.
    Adv("PHSA-2026-0004", "security", "Low", [nevra("bash-5.2-9.ph5")], ["CVE-2026-0009"]),
    Adv("PHBA-2026-0005", "bugfix", "", [nevra(NEW[4])]),
]


def served(advisories: list[Adv] | None = None, **options: Any) -> dict[str, bytes]:
    packages = [nevra(p) for p in OLD + NEW] + [nevra("bash-5.2-1.ph5")]
    return repos.repository(
        {
            "primary": repos.primary_xml(packages),
            "updateinfo": repos.updateinfo_xml(ADVISORIES if advisories is None else advisories),
        },
        **options,
    )


def packages(*names: str) -> HostPackages:
    return HostPackages(tuple(nevra(n) for n in names), (REPO, DISABLED), "5.0", "x86_64")


#: Host "a" is behind on everything; host "b" has openssl's fix and no linux at all.
HOST_A = packages(*OLD, "bash-5.2-1.ph5")
HOST_B = packages("openssl-3.0.8-2.ph5", "curl-8.1-1.ph5", "bash-5.2-1.ph5")


class FakeHosts:
    """Stands for SSH: what each host (by name) answers, or the error it raises."""

    def __init__(self, answers: dict[str, HostPackages | Exception]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(self, access: ssh.Access) -> HostPackages:
        self.asked.append(access.name)
        answer = self.answers[access.name]
        if isinstance(answer, Exception):
            raise answer
        return answer


def make_host(project: Project, name: str, **fields: Any) -> Host:
    """A host the refresh would read: enabled, an SSH address and a pinned host key."""
    values = {
        "docker_url": "tcp://127.0.0.1:9",
        "insecure": True,
        "address": "192.0.2.1",
        "ssh_host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE1mYWtlLWtleS1mb3ItdGVzdHMtb25seS0xMjM0",
        **fields,
    }
    return Host.objects.create(project=project, name=name, **values)
