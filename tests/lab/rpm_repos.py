"""The lab's RPM stack: small RPMs built here, Photon-style repositories, an RPM database per host.

Photon OS updates with tdnf from RPM repositories (repomd.xml, primary, updateinfo.xml); tdnf
is not packaged outside Photon, so the lab uses Debian's ``rpm``, ``createrepo-c`` and ``dnf``,
which read and write the same formats.

What ``up`` makes:

* RPMs built with ``rpmbuild`` from spec files written here (cached under ``var/cache`` by the
  digest of the specs), two versions of each demo package:

      photon-demo-lib    1:1.0-1.ph5 -> 1:1.1-1.ph5  x86_64  (an epoch, so it is exercised)
      photon-demo-tools  2.3-1.ph5   -> 2.3-2.ph5    noarch  (the update's %post fails on demand:
                                                              while /etc/photon-demo/fail-post
                                                              exists on the host)
      linux-demo         6.1.10-1.ph5 -> 6.1.11-1.ph5 x86_64 (kernel-like: reboot_suggested)

  and ``photon-lab-system``, which stands in the host's RPM database for Photon's bash and
  filesystem packages: the hosts' files come from the machine's layer, but scriptlets need
  ``/bin/sh`` provided by some installed package, or rpm and dnf refuse to install.
* Repositories made with ``createrepo_c``: ``base`` (the old versions, default gz metadata) and
  ``updates`` (the new ones, xz metadata) with an updateinfo.xml added by ``modifyrepo_c``: a
  security advisory (severity Important, two CVEs; photon-demo-lib and linux-demo) and a bugfix
  advisory (photon-demo-tools). Two broken copies of ``updates`` for the portal's error paths:
  ``broken-checksum`` (repomd.xml names a wrong sha256 for primary) and ``broken-truncated``
  (primary's XML cut half-way, recompressed and consistently checksummed, as a server
  publishing bad metadata would).
* An HTTP server (``python -m http.server``) for them, bound to the machine's address on the
  hosts' links (``10.251.X.254``, photon_hosts.GATEWAY). The issue says loopback, but a host's
  loopback is its own (each host is a network namespace): that address is the one both sides
  reach, the hosts as their on-link gateway and the portal, on the machine, as one of the
  machine's own addresses, so the URL in a host's .repo file is the very URL the portal reads.
* On each host, over SSH as the portal would log in: ``/etc/rpm/macros`` putting the RPM
  database at ``/var/lib/rpm`` as on Photon (Debian's rpm defaults to ``~/.rpmdb``), inside the
  host's own overlay root (never the machine's), ``/etc/yum.repos.d/photon-demo-{base,updates}.repo``
  in Photon's layout, and the base versions installed with dnf from the base repository. The
  second host gets photon-demo-lib's update as well, so the two hosts differ.

``up(workdir, hosts)`` returns the section below; ``down(workdir)`` stops the server and
removes the files (the hosts' own changes go with the hosts).
"""

from __future__ import annotations

import asyncio
import fcntl
import gzip
import hashlib
import ipaddress
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from tests.lab import common, photon_hosts

NAME = "rpm-http"
RELEASEVER = "5.0"
BASEARCH = "x86_64"
DIST = ".ph5"
#: Created on a host to make photon-demo-tools' update fail in %post (rollback tests).
FAIL_POST = "/etc/photon-demo/fail-post"
SECURITY_ID = "PHSA-2026-5.0-0101"
BUGFIX_ID = "PHBA-2026-5.0-0102"
CVES = ("CVE-2026-10001", "CVE-2026-10002")


@dataclass(frozen=True)
class Demo:
    name: str
    arch: str
    epoch: int
    base: tuple[str, str]
    update: tuple[str, str] | None
    reboot: bool = False
    fail_post: bool = False
    provides: tuple[str, ...] = ()

    def evr(self, which: tuple[str, str]) -> str:
        version, release = which
        return f"{self.epoch}:{version}-{release}{DIST}" if self.epoch else f"{version}-{release}{DIST}"


PACKAGES = (
    Demo("photon-lab-system", "noarch", 0, ("1.0", "1"), None, provides=("/bin/sh", "/usr/bin/sh")),
    Demo("photon-demo-lib", BASEARCH, 1, ("1.0", "1"), ("1.1", "1")),
    Demo("photon-demo-tools", "noarch", 0, ("2.3", "1"), ("2.3", "2"), fail_post=True),
    Demo("linux-demo", BASEARCH, 0, ("6.1.10", "1"), ("6.1.11", "1"), reboot=True),
)
DEMOS = [p.name for p in PACKAGES]

# ---------------------------------------------------------------- building


def _spec(demo: Demo, version: str, release: str) -> str:
    lines = [
        f"Name: {demo.name}",
        f"Version: {version}",
        f"Release: {release}{DIST}",
        *([f"Epoch: {demo.epoch}"] if demo.epoch else []),
        f"Summary: Photon Portal lab package {demo.name}",
        "License: Apache-2.0",
        f"BuildArch: {demo.arch}",
        # Nothing to scan: what it needs and gives is said here (and no debuginfo sub-package).
        "AutoReqProv: no",
        *(f"Provides: {p}" for p in demo.provides),
        "%define debug_package %{nil}",
        "%define _build_id_links none",
        "%description",
        f"{demo.name} {version}-{release}, built by the Photon Portal lab.",
        "%install",
        "mkdir -p %{buildroot}/usr/share/photon-demo",
        f"echo '{version}-{release}' > %{{buildroot}}/usr/share/photon-demo/{demo.name}.version",
    ]
    if demo.fail_post and (version, release) == demo.update:
        lines += [
            "%post",
            f"if [ -e {FAIL_POST} ]; then",
            f'  echo "{demo.name}: %post fails on demand ({FAIL_POST})" >&2; exit 1',
            "fi",
        ]
    lines += ["%files", f"/usr/share/photon-demo/{demo.name}.version", ""]
    return "\n".join(lines)


def _specs() -> dict[str, str]:
    specs = {}
    for demo in PACKAGES:
        for which in filter(None, (demo.base, demo.update)):
            specs[f"{demo.name}-{which[0]}-{which[1]}.spec"] = _spec(demo, *which)
    return specs


def build() -> Path:
    """Build every RPM into ``CACHE/rpm-demo/RPMS`` unless these specs built them already."""
    rpmbuild = common.require_binary("rpmbuild", "rpm")
    build_dir = common.CACHE / "rpm-demo"
    build_dir.mkdir(parents=True, exist_ok=True)
    specs = _specs()
    digest = hashlib.sha256(json.dumps(specs, sort_keys=True).encode()).hexdigest()
    out = build_dir / "RPMS"
    stamp = build_dir / "specs.sha256"
    # Parallel test sessions share the cache: one builds, the others wait and reuse.
    with open(build_dir / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if out.is_dir() and stamp.exists() and stamp.read_text() == digest:
            return out
        shutil.rmtree(build_dir / "top", ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
        top = build_dir / "top"
        (top / "SPECS").mkdir(parents=True)
        for name, text in specs.items():
            spec = top / "SPECS" / name
            spec.write_text(text)
            result = subprocess.run(
                # An RPM database of the build's own: Debian's rpm would open ~/.rpmdb, the machine's.
                [
                    rpmbuild,
                    "-bb",
                    "--quiet",
                    "--define",
                    f"_topdir {top}",
                    "--dbpath",
                    str(top / "rpmdb"),
                    str(spec),
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
            if result.returncode:
                raise RuntimeError(f"rpmbuild {name} failed:\n{result.stdout}{result.stderr}")
        out.mkdir()
        for rpm in (top / "RPMS").rglob("*.rpm"):
            shutil.copy2(rpm, out / rpm.name)
        stamp.write_text(digest)
    return out


# ---------------------------------------------------------------- repositories


def _rpm_file(demo: Demo, which: tuple[str, str]) -> str:
    return f"{demo.name}-{which[0]}-{which[1]}{DIST}.{demo.arch}.rpm"


def _updateinfo() -> str:
    def package(demo: Demo) -> str:
        assert demo.update
        version, release = demo.update
        reboot = "\n          <reboot_suggested>True</reboot_suggested>" if demo.reboot else ""
        return (
            f'        <package name="{demo.name}" version="{version}" release="{release}{DIST}" '
            f'epoch="{demo.epoch}" arch="{demo.arch}" src="{demo.name}-{version}-{release}{DIST}.src.rpm">\n'
            f"          <filename>{_rpm_file(demo, demo.update)}</filename>{reboot}\n        </package>"
        )

    by_name = {p.name: p for p in PACKAGES}

    def update(kind: str, advisory: str, severity: str, title: str, refs: str, names: list[str]) -> str:
        packages = "\n".join(package(by_name[n]) for n in names)
        return f"""  <update from="security@photon.lab" status="stable" type="{kind}" version="1.4">
    <id>{advisory}</id>
    <title>{title}</title>
    <issued date="2026-11-30 00:00:00"/>
    <updated date="2026-11-30 00:00:00"/>
    <severity>{severity}</severity>
    <summary>{title}</summary>
    <description>{title} (Photon Portal lab).</description>
    <references>
{refs}    </references>
    <pkglist>
      <collection short="photon-{RELEASEVER}">
        <name>VMware Photon OS {RELEASEVER}</name>
{packages}
      </collection>
    </pkglist>
  </update>
"""

    cves = "".join(
        f'      <reference href="https://nvd.nist.gov/vuln/detail/{cve}" id="{cve}" type="cve"'
        f' title="{cve}"/>\n'
        for cve in CVES
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<updates>\n'
        + update(
            "security",
            SECURITY_ID,
            "Important",
            "Security update of photon-demo-lib and linux-demo",
            cves,
            ["photon-demo-lib", "linux-demo"],
        )
        + update("bugfix", BUGFIX_ID, "", "Bug fix update of photon-demo-tools", "", ["photon-demo-tools"])
        + "</updates>\n"
    )


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if result.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{result.stdout}{result.stderr}")


def make_repos(root: Path, rpms: Path) -> None:
    createrepo = common.require_binary("createrepo_c", "createrepo-c")
    modifyrepo = common.require_binary("modifyrepo_c", "createrepo-c")
    for repo, pick in (("base", "base"), ("updates", "update")):
        packages = root / repo / "Packages"
        packages.mkdir(parents=True)
        for demo in PACKAGES:
            which = getattr(demo, pick)
            if which:
                shutil.copy2(rpms / _rpm_file(demo, which), packages)
    # base with createrepo_c's default compression (gz), updates with xz; Debian's createrepo_c 0.17
    # has no zstd (newer ones default to it): the portal's zstd reading is tested on its own.
    _run([createrepo, "--quiet", str(root / "base")])
    _run([createrepo, "--quiet", "--general-compress-type=xz", str(root / "updates")])
    updateinfo = root / "updateinfo.xml"
    updateinfo.write_text(_updateinfo())
    _run(
        [
            modifyrepo,
            "--mdtype=updateinfo",
            "--compress-type=xz",
            str(updateinfo),
            str(root / "updates/repodata"),
        ]
    )
    updateinfo.unlink()
    _break_checksum(root, root / "broken-checksum")
    _break_primary(root, root / "broken-truncated")


def _primary(repo: Path) -> tuple[Path, str]:
    """The primary file of ``repo`` and its record in repomd.xml (by text: the lab wrote it)."""
    repomd = (repo / "repodata/repomd.xml").read_text()
    record = repomd.split('<data type="primary">', 1)[1].split("</data>", 1)[0]
    href = record.split('<location href="', 1)[1].split('"', 1)[0]
    return repo / href, record


def _break_checksum(root: Path, broken: Path) -> None:
    shutil.copytree(root / "updates", broken)
    _, record = _primary(broken)
    checksum = record.split('<checksum type="sha256">', 1)[1].split("<", 1)[0]
    repomd = broken / "repodata/repomd.xml"
    repomd.write_text(repomd.read_text().replace(checksum, hashlib.sha256(b"not this").hexdigest(), 1))


def _break_primary(root: Path, broken: Path) -> None:
    shutil.copytree(root / "base", broken)  # gz primary: recompressed with the standard library
    path, record = _primary(broken)
    xml = gzip.decompress(path.read_bytes())
    cut = xml[: len(xml) // 2]
    data = gzip.compress(cut)
    path.write_bytes(data)
    new = record
    for tag, old_value, value in (
        ("checksum", _between(record, '<checksum type="sha256">', "<"), hashlib.sha256(data).hexdigest()),
        (
            "open-checksum",
            _between(record, '<open-checksum type="sha256">', "<"),
            hashlib.sha256(cut).hexdigest(),
        ),
        ("size", _between(record, "<size>", "<"), str(len(data))),
        ("open-size", _between(record, "<open-size>", "<"), str(len(cut))),
    ):
        new = new.replace(f">{old_value}</{tag}>", f">{value}</{tag}>", 1)
    repomd = broken / "repodata/repomd.xml"
    repomd.write_text(repomd.read_text().replace(record, new, 1))


def _between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0]


# ---------------------------------------------------------------- serving


def gateway(host_address: str) -> str:
    """The machine's address on a host's link: what the host reaches it by (photon_hosts)."""
    network = ipaddress.ip_network(f"{host_address}/24", strict=False)
    return str(network.network_address + photon_hosts.GATEWAY)


def serve(workdir: Path, address: str) -> int:
    port = common.free_port()
    argv = [
        sys.executable,
        "-m",
        "http.server",
        "--bind",
        address,
        "--directory",
        str(workdir / "www"),
        str(port),
    ]
    proc = common.spawn(NAME, argv, workdir)

    def answers() -> bool:
        if proc.poll() is not None:
            raise common.LabUnavailable(
                f"the repositories' HTTP server exited: {common.log_tail(workdir, NAME)}"
            )
        return common.port_open(address, port)

    common.wait_until(answers, timeout=30, what="the repositories' HTTP server")
    return port


# ---------------------------------------------------------------- hosts


def repo_file(repo_id: str, title: str, baseurl: str) -> str:
    """A .repo file in Photon's layout (photon-repos' photon-updates.repo).

    The lab's RPMs are unsigned, so gpgcheck=0 and no gpgkey. The URL carries $releasever and
    $basearch where tdnf and dnf substitute them alike (dnf would not see ``$releasever_``)."""
    return (
        f"[{repo_id}]\nname=VMware Photon Linux $releasever ($basearch) {title}\nbaseurl={baseurl}\n"
        "gpgcheck=0\nenabled=1\nskip_if_unavailable=True\n"
    )


def _connect(host: dict[str, Any]) -> Any:
    return asyncssh.connect(
        str(host["address"]),
        port=int(host["port"]),
        username=str(host["user"]),
        client_keys=[str(host["private_key"])],
        known_hosts=([asyncssh.import_public_key(str(host["host_key"]))], [], []),
        connect_timeout=10,
    )


def dnf_command(*args: str) -> str:
    """dnf as the lab runs it on a host: the host's repositories, Photon's release, no plugins."""
    return " ".join(["dnf", "-y", "-q", f"--releasever={RELEASEVER}", "--noplugins", *args])


async def _provision(host: dict[str, Any], urls: dict[str, str], extra: list[str]) -> None:
    async with _connect(host) as conn:
        async with conn.start_sftp_client() as sftp:
            for path, text in (
                ("/etc/rpm/macros", "%_dbpath /var/lib/rpm\n"),
                (
                    "/etc/yum.repos.d/photon-demo-base.repo",
                    repo_file("photon-demo-base", "Demo", urls["base"]),
                ),
                (
                    "/etc/yum.repos.d/photon-demo-updates.repo",
                    repo_file("photon-demo-updates", "Demo Updates", urls["updates"]),
                ),
            ):
                await sftp.makedirs(path.rpartition("/")[0], exist_ok=True)
                async with sftp.open(path, "w") as handle:
                    await handle.write(text)
        script = " && ".join(
            [
                "mkdir -p /var/lib/rpm /etc/photon-demo",
                "rpm --initdb",
                dnf_command("--disablerepo=*", "--enablerepo=photon-demo-base", "install", *DEMOS),
                *(
                    [dnf_command("--disablerepo=*", "--enablerepo=photon-demo-updates", "upgrade", *extra)]
                    if extra
                    else []
                ),
            ]
        )
        result = await conn.run(script, check=False, timeout=300)
        if result.exit_status:
            raise RuntimeError(
                f"{host['name']}: installing the demo RPMs failed:\n{result.stdout}{result.stderr}"
            )


def url_for(address: str, port: int, repo: str) -> str:
    return f"http://{address}:{port}/{repo}/"


def up(workdir: Path, hosts: list[dict[str, Any]]) -> dict[str, Any]:
    """Build, publish and serve the repositories; give every host its RPM database and repos."""
    common.require_root()
    for binary, package in (("rpmbuild", "rpm"), ("createrepo_c", "createrepo-c"), ("dnf", "dnf")):
        common.require_binary(binary, package)
    if not hosts:
        raise ValueError("the RPM stack needs the lab's hosts")
    workdir = workdir.resolve()
    down(workdir)
    workdir.mkdir(parents=True)
    try:
        rpms = build()
        make_repos(workdir / "www", rpms)
        address = gateway(str(hosts[0]["address"]))
        port = serve(workdir, address)
        # The path carries $releasever and $basearch as Photon's do; what it expands to is served.
        (workdir / "www" / "photon" / RELEASEVER).mkdir(parents=True)
        for repo in ("base", "updates"):
            (workdir / "www" / "photon" / RELEASEVER / f"demo_{repo}_{BASEARCH}").symlink_to(
                workdir / "www" / repo
            )
        templates = {
            repo: f"http://{address}:{port}/photon/$releasever/demo_{repo}_$basearch/"
            for repo in ("base", "updates")
        }

        async def provision_all() -> None:
            await asyncio.gather(
                *(
                    _provision(host, templates, ["photon-demo-lib"] if i == 1 else [])
                    for i, host in enumerate(hosts)
                )
            )

        asyncio.run(provision_all())
    except BaseException:
        down(workdir)
        raise
    section = {
        "address": address,
        "port": port,
        "releasever": RELEASEVER,
        "basearch": BASEARCH,
        "repo_templates": templates,
        "urls": {
            repo: url_for(address, port, repo)
            for repo in ("base", "updates", "broken-checksum", "broken-truncated")
        },
        "hosts": [str(h["name"]) for h in hosts],
        "security_advisory": SECURITY_ID,
        "bugfix_advisory": BUGFIX_ID,
        "cves": list(CVES),
        "fail_post": FAIL_POST,
    }
    (workdir / "rpm_repos.json").write_text(json.dumps(section, indent=1))
    return section


def down(workdir: Path) -> None:
    """Stop the HTTP server and remove the repositories; safe to run twice."""
    workdir = workdir.resolve()
    common.stop_recorded(workdir, timeout=5)
    if workdir.exists():
        shutil.rmtree(workdir)
