"""RPM version order, held to the machine's own rpm (Debian's rpm 4.18, as Photon 5's)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from hosts.patches import versions
from hosts.patches.records import Nevra
from tests.lab.fixtures import unavailable

#: (a, b, rpm's answer): rpm's own rpmvercmp cases and the EVR shapes Photon's packages have.
PAIRS = [
    ("1.0", "1.0", 0),
    ("1.0", "2.0", -1),
    ("2.0", "1.0", 1),
    ("2.0.1", "2.0.1", 0),
    ("2.0", "2.0.1", -1),
    ("2.0.1a", "2.0.1a", 0),
    ("2.0.1a", "2.0.1", 1),
    ("5.5p1", "5.5p1", 0),
    ("5.5p1", "5.5p2", -1),
    ("5.5p10", "5.5p1", 1),
    ("10xyz", "10.1xyz", -1),
    ("xyz10", "xyz10.1", -1),
    ("xyz.4", "xyz.4", 0),
    ("xyz.4", "8", -1),
    ("8", "xyz.4", 1),
    ("xyz.4", "2", -1),
    ("5.5p2", "5.6p1", -1),
    ("5.6p1", "6.5p1", -1),
    ("6.0.rc1", "6.0", 1),
    ("10b2", "10a1", 1),
    ("10a2", "10b2", -1),
    ("1.0aa", "1.0aa", 0),
    ("1.0a", "1.0aa", -1),
    ("10.0001", "10.1", 0),
    ("10.0001", "10.0039", -1),
    ("4.999.9", "5.0", -1),
    ("20101121", "20101122", -1),
    ("2_0", "2_0", 0),
    ("2.0", "2_0", 0),
    ("a", "a", 0),
    ("a+", "a+", 0),
    ("a+", "a_", 0),
    ("+a", "_a", 0),
    ("+", "_", 0),
    ("1.0~rc1", "1.0~rc1", 0),
    ("1.0~rc1", "1.0", -1),
    ("1.0~rc1", "1.0~rc2", -1),
    ("1.0~rc1~git123", "1.0~rc1", -1),
    ("1.0^", "1.0", 1),
    ("1.0^git1", "1.0", 1),
    ("1.0^git1", "1.01", -1),
    ("1.0^20160101", "1.0.1", -1),
    ("1.0^git1~pre", "1.0^git1", -1),
    ("1.0~rc1^git1", "1.0~rc1", 1),
    ("1.0", "1.0a", -1),
    ("1.0.0", "1.0", 1),
    ("1.a", "1.1", -1),
    ("fc4", "fc.4", 0),
    ("1b.fc17", "1.fc17", -1),
    # Full EVRs: epoch first, then version, then release.
    ("1:1.0-1", "2.0-1", 1),
    ("0:1.0-1", "1.0-1", 0),
    ("1.0-1.ph5", "1.0-2.ph5", -1),
    ("6.1.10-1.ph5", "6.1.11-1.ph5", -1),
    ("6.1.10-10.ph5", "6.1.10-9.ph5", 1),
    ("2.3-1.ph5", "2.3-1.ph4", 1),
    ("1:1.1-1.ph5", "1:1.0-1.ph5", 1),
    ("3.0.9-1.ph5", "3.0.10-1.ph5", -1),
]


@pytest.mark.parametrize(("a", "b", "expected"), PAIRS)
def test_the_portal_orders_versions_as_the_table_says(a: str, b: str, expected: int) -> None:
    assert versions.compare(a, b) == expected
    assert versions.compare(b, a) == -expected


def _evr(text: str) -> tuple[int, str, str]:
    epoch, _, rest = text.rpartition(":")
    version, _, release = rest.partition("-")
    return int(epoch or 0), version, release


@pytest.mark.parametrize(("a", "b", "expected"), [p for p in PAIRS if "-" in p[0] and "-" in p[1]])
def test_the_sort_keys_order_as_rpm(a: str, b: str, expected: int) -> None:
    ka, kb = versions.evr_key(*_evr(a)), versions.evr_key(*_evr(b))
    assert (ka > kb) - (ka < kb) == expected
    assert versions.key(Nevra("p", *_evr(a), "x86_64")) == ka


def test_the_table_is_what_rpm_itself_says() -> None:
    """One rpm process for the whole table: rpm's Lua ``rpm.vercmp`` is rpmvercmp on EVRs."""
    if not shutil.which("rpm"):
        unavailable(RuntimeError("rpm not found: apt-get install rpm"))
    calls = " ".join(f'print(rpm.vercmp("{a}", "{b}") .. ",")' for a, b, _ in PAIRS)
    said = subprocess.run(
        ["rpm", "--eval", f"%{{lua: {calls}}}"], capture_output=True, text=True, check=True
    ).stdout
    answers = [int(x) for x in said.replace("\n", "").split(",") if x.strip()]
    assert answers == [expected for _, _, expected in PAIRS]
