"""The benchmark scripts run (tiny settings; speed itself is measured by running them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _one_thread() -> dict[str, str]:
    """The subprocesses' environment: one thread each (a smoke test, not a measurement)."""
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def test_maml_speed_benchmark_runs_and_checks_gradients(tmp_path):
    out = tmp_path / "speed.json"
    names = ["reference loop, 2nd order", "vmap, 1st order",
             "loop, 2nd order, backward per task", "loop, 2nd order, batched first step"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "maml_speed.py"), "--steps", "1",
         "--warmup", "0", "--repeats", "2", "--meta-batch", "2", "--queries", "1",
         "--check-tasks", "2", "--force", "--json", str(out), "--variants", *names],
        capture_output=True, text=True, check=True, timeout=600, env=_one_thread())
    assert "x baseline" in done.stdout and "vmap, 1st order" in done.stdout
    report = json.loads(out.read_text())
    results = report["results"]
    assert set(results) == set(names)
    for r in results.values():
        assert r["tasks_per_s_min"] <= r["tasks_per_s"] <= r["tasks_per_s_max"]
        assert r["tasks_per_s"] > 0 and r["peak_mb"] > 0
        assert r["gradient_check"]["ok"] and r["gradient_check"]["max_abs_diff"] <= 1e-9
    assert all(len(runs) == 2 for runs in report["per_process"].values())
    assert isinstance(report["machine"]["busy"], bool)
    assert ("MACHINE BUSY" in done.stdout) == report["machine"]["busy"]


def test_maml_speed_benchmark_refuses_a_busy_machine(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "maml_speed.py"), "--max-load", "-1",
         "--json", str(tmp_path / "never.json")],
        capture_output=True, text=True, timeout=120, env=_one_thread())
    assert done.returncode != 0 and "machine busy" in done.stderr
    assert not (tmp_path / "never.json").exists()


@pytest.mark.skipif(not os.environ.get("COMPANION_PEERS_PYTHON"),
                    reason="needs the peers' environment (benchmarks/peers_env.sh); set "
                           "COMPANION_PEERS_PYTHON to its python")
def test_peers_benchmark_checks_learn2learn_and_higher(tmp_path):
    out = tmp_path / "peers.json"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "peers.py"), "--peers-python",
         os.environ["COMPANION_PEERS_PYTHON"], "--steps", "1", "--warmup", "0", "--repeats",
         "1", "--meta-batch", "2", "--queries", "1", "--check-tasks", "2", "--force",
         "--json", str(out)],
        capture_output=True, text=True, check=True, timeout=900, env=_one_thread())
    results = json.loads(out.read_text())["results"]
    assert {"learn2learn, 2nd order", "higher, 2nd order", "learn2learn, 1st order"} <= set(
        results)
    assert all(r["gradient_check"]["ok"] for r in results.values())


def test_distributed_speed_benchmark_runs(tmp_path):
    out = tmp_path / "dist.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "distributed_speed.py"), "--steps", "1",
         "--warmup", "0", "--meta-batch", "2", "--repeats", "1", "--json", str(out)],
        capture_output=True, text=True, check=True, timeout=300)
    assert "2 ranks x 1 thread" in done.stdout
    results = json.loads(out.read_text())["results"]
    assert all(r["tasks_per_s"] > 0 for r in results.values())


def test_eval_speed_benchmark_runs_and_checks_loop_equals_vmap(tmp_path):
    out = tmp_path / "eval.json"
    modes = ["transductive", "non-transductive, query loop", "both protocols"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "eval_speed.py"), "--episodes", "1",
         "--repeats", "1", "--learners", "MAML", "--force", "--json", str(out), "--modes",
         *modes], capture_output=True, text=True, check=True, timeout=600, env=_one_thread())
    assert "vs transd." in done.stdout
    report = json.loads(out.read_text())
    assert report["loop_vs_vmap_max_abs_diff"] <= 1e-4
    results = report["results"]["MAML"]
    assert set(results) == set(modes)
    assert results["transductive"]["ratio_to_transductive"] == 1.0
    assert all(r["seconds_per_episode"] > 0 for r in results.values())


def test_eval_speed_benchmark_refuses_a_busy_machine_and_bad_counts():
    script = str(ROOT / "benchmarks" / "eval_speed.py")
    busy = subprocess.run([sys.executable, script, "--max-load", "-1"], capture_output=True,
                          text=True, timeout=120)
    assert busy.returncode != 0 and "machine busy" in busy.stderr
    bad = subprocess.run([sys.executable, script, "--episodes", "0"], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode != 0 and "--episodes must be >= 1" in bad.stderr
