"""The NoCloud seed ISO: it opens, its files read back intact, and it carries the cidata label."""

from __future__ import annotations

import io
from pathlib import Path

import pycdlib
import pytest

from hosts.provision import cloud_config
from tests.provision.test_cloud_config import seed

pytestmark = pytest.mark.django_db


def read_back(iso_bytes: bytes, path: str, **kind: str) -> bytes:
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(iso_bytes))
    try:
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, **{kind["by"]: path})
        return out.getvalue()
    finally:
        iso.close()


def test_the_seed_iso_reads_back_intact_with_the_cidata_label(tmp_path: Path) -> None:
    files = cloud_config.seed_files(seed())
    data = cloud_config.seed_iso(files)
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(data))
    try:
        assert iso.pvd.volume_identifier.decode().strip() == "cidata"
        assert iso.has_rock_ridge() and iso.has_joliet()
    finally:
        iso.close()
    for name, content in files.items():
        assert read_back(data, "/" + name, by="rr_path") == content
        assert read_back(data, "/" + name, by="joliet_path") == content
    assert read_back(data, "/user-data", by="rr_path").startswith(b"#cloud-config\n")
