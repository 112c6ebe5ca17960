"""The house rules the code keeps (docs/architecture.md): small modules, and no import
hidden inside a function to dodge a cycle. import-linter (in `make lint`) proves the
direction of imports; these are the rules it cannot express."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("portal", "hosts", "registry", "alerts", "directory", "sso")
MAX_LINES = 500


def _modules() -> list[Path]:
    return sorted(
        path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    )


def test_no_module_in_hosts_is_over_the_limit() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for path in (ROOT / "hosts").rglob("*.py")
        if "migrations" not in path.parts and (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}, f"modules over {MAX_LINES} lines: split them by what they do"


def _comment_above(lines: list[str], index: int) -> bool:
    """The reason may sit on the line above, or above the block of imports this one is in."""
    index -= 1
    while index >= 0 and lines[index].strip().startswith(("from ", "import ")):
        index -= 1
    return index >= 0 and lines[index].strip().startswith("#")


def _imports_in_functions(path: Path) -> list[tuple[int, str]]:
    source = path.read_text()
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.Import | ast.ImportFrom):
                line = lines[inner.lineno - 1]
                if "#" not in line and not _comment_above(lines, inner.lineno - 1):
                    found.append((inner.lineno, line.strip()))
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_an_import_inside_a_function_says_why(path: Path) -> None:
    assert _imports_in_functions(path) == [], (
        "an import inside a function needs a comment saying why it is not a cycle "
        "(e.g. Django app loading); a cycle is removed, not hidden"
    )


def test_the_check_finds_an_unexplained_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f():\n    from os import path\n\n\ndef g():\n    import sys  # why\n\n\n"
        "def h():\n    # why, for the block\n    import io\n    import re\n"
    )
    assert _imports_in_functions(sample) == [(2, "from os import path")]
