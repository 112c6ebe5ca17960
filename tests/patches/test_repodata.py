"""Reading a repository's metadata: checksums first, every compression createrepo_c writes,
streaming XML, and one clear error (changing nothing) for anything wrong."""

from __future__ import annotations

import gzip
import hashlib

import pytest

from hosts.patches import repodata
from hosts.patches.records import RepoMetadata, RepoMetadataError
from tests.patches.repos import BASE, Adv, nevra, primary_xml, repository, session, updateinfo_xml

PACKAGES = [
    nevra("photon-demo-lib-1:1.1-1.ph5"),
    nevra("linux-demo-6.1.11-1.ph5"),
    nevra("photon-demo-tools-2.3-2.ph5", "noarch"),
]
ADVISORIES = [
    Adv(
        "PHSA-2026-5.0-0101",
        "security",
        "Important",
        PACKAGES[:2],
        cves=["CVE-2026-10001", "CVE-2026-10002"],
        reboot={"linux-demo"},
    ),
    Adv("PHBA-2026-5.0-0102", "bugfix", "", PACKAGES[2:]),
]


def _repo(**options: object) -> dict[str, bytes]:
    return repository(
        {"primary": primary_xml(PACKAGES), "updateinfo": updateinfo_xml(ADVISORIES)},
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("compression", ["gz", "xz", "zstd", "bz2", "none"])
def test_packages_and_advisories_are_read_whatever_the_compression(compression: str) -> None:
    http, _ = session(_repo(compression=compression))
    metadata = repodata.fetch_repository(BASE, session=http)
    assert metadata.url == BASE
    assert metadata.revision == "1796608439"
    assert list(metadata.packages) == PACKAGES
    security, bugfix = metadata.advisories
    assert (security.id, security.type, security.severity) == ("PHSA-2026-5.0-0101", "security", "Important")
    assert security.cves == ("CVE-2026-10001", "CVE-2026-10002")
    assert [str(p.nevra) for p in security.packages] == [
        "photon-demo-lib-1:1.1-1.ph5.x86_64",
        "linux-demo-6.1.11-1.ph5.x86_64",
    ]
    assert [p.reboot_suggested for p in security.packages] == [False, True]
    assert security.reboot_suggested and not bugfix.reboot_suggested
    assert (bugfix.id, bugfix.type, bugfix.severity, bugfix.cves) == ("PHBA-2026-5.0-0102", "bugfix", "", ())


def test_a_repository_without_updateinfo_has_no_advisories() -> None:
    http, _ = session(repository({"primary": primary_xml(PACKAGES)}))
    metadata = repodata.fetch_repository(BASE.rstrip("/"), session=http)
    assert len(metadata.packages) == 3 and metadata.advisories == ()


def test_the_metadata_survives_its_json_cache() -> None:
    http, _ = session(_repo())
    metadata = repodata.fetch_repository(BASE, session=http)
    assert RepoMetadata.from_json(metadata.to_json()) == metadata


def test_a_wrong_checksum_is_refused_with_both_sums_named() -> None:
    wrong = hashlib.sha256(b"something else").hexdigest()
    http, _ = session(_repo(checksums={"primary": wrong}))
    with pytest.raises(RepoMetadataError) as error:
        repodata.fetch_repository(BASE, session=http)
    message = str(error.value)
    assert "primary.xml.gz: checksum mismatch" in message
    assert f"repomd.xml says {wrong}" in message
    assert message.startswith(BASE + "repodata/")


def test_a_checksum_weaker_than_sha2_is_refused() -> None:
    files = _repo()
    files["repodata/repomd.xml"] = files["repodata/repomd.xml"].replace(b'type="sha256"', b'type="md5"')
    http, _ = session(files)
    with pytest.raises(RepoMetadataError, match="gives a md5 checksum; the portal accepts only SHA-2"):
        repodata.fetch_repository(BASE, session=http)


def test_truncated_xml_is_refused_even_with_matching_checksums() -> None:
    """A server publishing bad metadata consistently: the checksums match what it serves."""
    xml = primary_xml(PACKAGES)
    http, _ = session(repository({"primary": xml[: len(xml) // 2]}))
    with pytest.raises(RepoMetadataError, match=r"the primary XML is truncated or malformed \(.*line \d+"):
        repodata.fetch_repository(BASE, session=http)


def test_truncated_compression_is_refused() -> None:
    files = repository({"primary": primary_xml(PACKAGES)}, compression="none")
    href = next(k for k in files if k.endswith("primary.xml"))
    cut = gzip.compress(files[href])[:-30]
    files[href] = cut
    files["repodata/repomd.xml"] = files["repodata/repomd.xml"].replace(
        href.split("/")[1].split("-")[0].encode(), hashlib.sha256(cut).hexdigest().encode(), 1
    )
    http, _ = session(files)
    with pytest.raises(RepoMetadataError, match="the compressed primary data is truncated or corrupt"):
        repodata.fetch_repository(BASE, session=http)


def test_a_primary_cut_at_a_package_boundary_is_caught_by_its_count() -> None:
    http, _ = session(repository({"primary": primary_xml(PACKAGES[:2], announce=3)}))
    with pytest.raises(RepoMetadataError, match="lists 2 packages but announces 3"):
        repodata.fetch_repository(BASE, session=http)


def test_entity_declarations_are_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE updates [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><updates><update><id>&b;</id></update></updates>'
    )
    http, _ = session(repository({"primary": primary_xml(PACKAGES), "updateinfo": bomb}))
    with pytest.raises(RepoMetadataError, match="declares entities or external references"):
        repodata.fetch_repository(BASE, session=http)


def test_a_missing_repository_says_so() -> None:
    http, _ = session({})
    with pytest.raises(RepoMetadataError, match=r"repodata/repomd.xml answered HTTP 404"):
        repodata.fetch_repository(BASE, session=http)


def test_a_repomd_that_is_not_one_says_so() -> None:
    http, _ = session({"repodata/repomd.xml": b"<html>a proxy's error page</html>"})
    with pytest.raises(RepoMetadataError, match=r"is not a valid repomd\.xml"):
        repodata.fetch_repository(BASE, session=http)


def test_an_unchanged_repomd_reads_nothing_more() -> None:
    http, adapter = session(_repo())
    first = repodata.fetch_repository(BASE, session=http)
    asked = len(adapter.asked)
    again = repodata.fetch_repository(BASE, session=http, previous=first)
    assert again is first
    assert adapter.asked[asked:] == [BASE + "repodata/repomd.xml"]


def test_refresh_stores_only_what_was_read_whole() -> None:
    cache: dict[str, dict[str, object]] = {}
    http, _ = session(_repo())
    good = repodata.refresh(cache, BASE, session=http)
    assert cache == {BASE: good.to_json()}
    kept = dict(cache)
    wrong = hashlib.sha256(b"x").hexdigest()
    broken, _ = session(repository({"primary": primary_xml(PACKAGES[:1])}, checksums={"primary": wrong}))
    with pytest.raises(RepoMetadataError, match="checksum mismatch"):
        repodata.refresh(cache, BASE, session=broken)
    assert cache == kept
