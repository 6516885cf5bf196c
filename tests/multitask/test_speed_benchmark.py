"""The multi-task speed benchmark runs (its --quick mode; speed itself is measured by hand)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_multitask_speed_benchmark_quick(tmp_path):
    out = tmp_path / "speed.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "multitask_speed.py"), "--quick",
         "--methods", "equal", "pcgrad", "mgda_ub", "--json", str(out)],
        capture_output=True, text=True, check=True, timeout=300)
    assert "ratio" in done.stdout and "pcgrad" in done.stdout
    results = json.loads(out.read_text())["results"]
    assert set(results) == {"equal", "pcgrad", "mgda_ub"}
    assert results["equal"]["2"]["ratio_to_equal"] == 1.0
    assert all(r["2"]["seconds_per_step"] > 0 for r in results.values())
