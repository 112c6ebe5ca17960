"""A clone of the repository alone runs, tests and brings up its lab: nothing names a path outside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Ways a file could reach outside the clone: the notes folder that sat beside the first
#: checkouts, a machine's absolute work path, or climbing out of the repository.
OUTSIDE = re.compile(r"\.\./shared|/work/shared|shared/reference|parents\[[3-9]\]|REPO\.parent|/work/main")
TEXT = {".py", ".md", ".html", ".js", ".css", ".toml", ".cfg", ".ini", ".sh", ".txt", ".yaml", ".yml", ""}


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True)
    return [REPO / name for name in listed.stdout.splitlines()]


def test_no_tracked_file_names_a_path_outside_the_repository() -> None:
    offenders = []
    for path in tracked_files():
        if path.suffix not in TEXT or path == Path(__file__).resolve() or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:120]}")
    assert offenders == []


def test_the_lab_carries_its_reference_files_with_their_sources_and_licence() -> None:
    reference = REPO / "tests" / "lab" / "reference"
    readme = (reference / "README.md").read_text()
    for path in sorted(p for p in reference.rglob("*") if p.is_file() and p.name != "README.md"):
        if path.parent != reference:  # every copied file is listed by its folder and name prefix
            prefix = path.name.split("_")[0] if path.parent.name.startswith("photon") else path.name
            assert prefix in readme, f"{path.name} has no source in the reference README"
    assert "Apache License" in (reference / "LICENSE-Apache-2.0").read_text()
