"""No merge-conflict marker survives in a tracked text file (one once hid in a docstring,
where Python, ruff and mypy all accept it)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^(<{7} |>{7} |={7}$)", re.M)


def _tracked() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_no_conflict_markers_in_tracked_files():
    found = []
    for path in _tracked():
        if path.suffix in {".pt", ".png", ".zip", ".gz"} or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        # In notebooks the sources are JSON strings: a marker line starts with `"`.
        if path.suffix == ".ipynb":
            text = "\n".join(line.strip().lstrip('"') for line in text.splitlines())
        found += [f"{path.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1}"
                  for m in MARKER.finditer(text)]
    assert not found, f"merge-conflict markers: {found}"
