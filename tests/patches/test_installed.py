"""What a host has: rpm's answer to the portal's query, and its .repo files read as tdnf does."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from hosts.patches import installed
from hosts.patches.records import Nevra, RepoFileError
from tests.lab.fixtures import unavailable

RPM_OUTPUT = (
    "photon-demo-lib\t1\t1.0\t1.ph5\tx86_64\n"
    "linux-demo\t0\t6.1.10\t1.ph5\tx86_64\n"
    "gpg-pubkey\t0\t8a6a826d\t5a4e3a1f\t(none)\n"
    "photon-demo-tools\t0\t2.3\t1.ph5\tnoarch\n"
)

#: In the layout of Photon's photon-updates.repo (vmware/photon SPECS/photon-repos), Photon 5 URLs.
PHOTON_UPDATES = """\
[photon-updates]
name=VMware Photon Linux $releasever ($basearch) Updates
baseurl=https://packages.vmware.com/photon/$releasever/photon_updates_$releasever_$basearch
gpgkey=file:///etc/pki/rpm-gpg/VMWARE-RPM-GPG-KEY file:///etc/pki/rpm-gpg/VMWARE-RPM-GPG-KEY-4096
gpgcheck=1
enabled=1
skip_if_unavailable=True
"""


def test_rpm_output_is_read_and_signing_keys_left_out() -> None:
    assert installed.parse_rpm_output(RPM_OUTPUT) == [
        Nevra("photon-demo-lib", 1, "1.0", "1.ph5", "x86_64"),
        Nevra("linux-demo", 0, "6.1.10", "1.ph5", "x86_64"),
        Nevra("photon-demo-tools", 0, "2.3", "1.ph5", "noarch"),
    ]


@pytest.mark.parametrize("line", ["rpm: no database\n", "a\t(none)\t1\t2\tx86_64\n", "a\t0\t1\t2\n"])
def test_an_answer_that_is_not_the_query_format_is_an_error(line: str) -> None:
    with pytest.raises(installed.InstalledError, match="is not name, epoch, version, release, arch"):
        installed.parse_rpm_output(RPM_OUTPUT + line)


def test_the_query_format_is_what_rpm_prints(tmp_path: Path) -> None:
    """The command the portal sends, run by the machine's rpm on an empty database of its own."""
    if not shutil.which("rpm"):
        unavailable(RuntimeError("rpm not found: apt-get install rpm"))
    db = tmp_path / "rpmdb"
    subprocess.run(["rpm", "--dbpath", str(db), "--initdb"], check=True)
    command = installed.RPM_COMMAND.replace("rpm -qa", f"rpm --dbpath {shlex.quote(str(db))} -qa")
    said = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
    assert installed.parse_rpm_output(said) == []
    # The format itself, on a package header: rpm expands it for `-q --specfile` too.
    spec = tmp_path / "p.spec"
    spec.write_text(
        "Name: p\nEpoch: 2\nVersion: 1.0\nRelease: 3.ph5\nSummary: s\nLicense: MIT\nBuildArch: noarch\n"
        "%description\nd\n%files\n"
    )
    fmt = installed.QUERY_FORMAT
    said = subprocess.run(
        ["rpm", "--dbpath", str(db), "-q", "--specfile", str(spec), "--queryformat", fmt],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert installed.parse_rpm_output(said) == [Nevra("p", 2, "1.0", "3.ph5", "noarch")]
    no_epoch = spec.read_text().replace("Epoch: 2\n", "")
    spec.write_text(no_epoch)
    said = subprocess.run(
        ["rpm", "--dbpath", str(db), "-q", "--specfile", str(spec), "--queryformat", fmt],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert installed.parse_rpm_output(said) == [Nevra("p", 0, "1.0", "3.ph5", "noarch")]


def test_variables_are_replaced_as_tdnf_does() -> None:
    values = {"releasever": "5.0", "basearch": "x86_64"}
    assert installed.substitute("photon_updates_$releasever_$basearch", values) == "photon_updates_5.0_x86_64"
    assert installed.substitute("/$releasever/$basearch/", values) == "/5.0/x86_64/"
    # tdnf: an unknown variable is replaced by nothing; an upper-case letter ends a name.
    assert installed.substitute("a$unknown/b", values) == "a/b"
    assert installed.substitute("$basearchX", values) == "x86_64X"


def test_photons_own_repo_file_is_read() -> None:
    (repo,) = installed.parse_repo_file(
        PHOTON_UPDATES, file="/etc/yum.repos.d/photon-updates.repo", releasever="5.0", basearch="x86_64"
    )
    assert repo.id == "photon-updates"
    assert repo.name == "VMware Photon Linux 5.0 (x86_64) Updates"
    assert repo.baseurls == ("https://packages.vmware.com/photon/5.0/photon_updates_5.0_x86_64",)
    assert (repo.enabled, repo.gpgcheck, repo.skip_if_unavailable) == (True, True, True)
    host = installed.HostPackages((), (repo,), "5.0", "x86_64")
    assert installed.enabled_urls(host) == list(repo.baseurls)


def test_tdnf_defaults_and_several_mirrors() -> None:
    text = "[a]\nbaseurl=http://m1/a/ http://m2/a/\n\n[b]\nbaseurl=http://m/b\nenabled=0\ngpgcheck=no\n"
    a, b = installed.parse_repo_file(text, file="x.repo", releasever="5.0", basearch="aarch64")
    # tdnf's defaults: a repository is disabled unless enabled=1, and gpg-checked.
    assert (a.enabled, a.gpgcheck, a.baseurls) == (False, True, ("http://m1/a/", "http://m2/a/"))
    assert (b.enabled, b.gpgcheck) == (False, False)
    assert installed.enabled_urls(installed.HostPackages((), (a, b), "5.0", "aarch64")) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("baseurl=http://x\n", "x.repo: File contains no section headers"),
        ("[a]\nenabled=maybe\n", r"x.repo \[a\]: 'maybe' is neither yes nor no"),
        ("[a]\nbaseurl=1\n[a]\nbaseurl=2\n", "x.repo: While reading from 'x.repo'"),
    ],
)
def test_a_broken_repo_file_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(RepoFileError, match=message):
        installed.parse_repo_file(text, file="x.repo", releasever="5.0", basearch="x86_64")
