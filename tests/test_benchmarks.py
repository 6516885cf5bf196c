"""The benchmark scripts run (tiny settings; speed itself is measured by running them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_maml_speed_benchmark_runs(tmp_path):
    out = tmp_path / "speed.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "maml_speed.py"), "--steps", "1",
         "--warmup", "0", "--meta-batch", "2", "--queries", "1", "--json", str(out),
         "--variants", "reference loop, 2nd order", "vmap, 1st order"],
        capture_output=True, text=True, check=True, timeout=300)
    assert "x baseline" in done.stdout and "vmap, 1st order" in done.stdout
    results = json.loads(out.read_text())["results"]
    assert set(results) == {"reference loop, 2nd order", "vmap, 1st order"}
    assert all(r["tasks_per_s"] > 0 for r in results.values())


def test_distributed_speed_benchmark_runs(tmp_path):
    out = tmp_path / "dist.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "distributed_speed.py"), "--steps", "1",
         "--warmup", "0", "--meta-batch", "2", "--repeats", "1", "--json", str(out)],
        capture_output=True, text=True, check=True, timeout=300)
    assert "2 ranks x 1 thread" in done.stdout
    results = json.loads(out.read_text())["results"]
    assert all(r["tasks_per_s"] > 0 for r in results.values())
