"""The README's homework example runs exactly as written and learns."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _homework_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- homework-example.*?-->\n```python\n(.*?)```", readme, re.S)
    assert match, "README.md lost its marked homework example"
    return match.group(1)


def test_example_is_ten_lines():
    assert len(_homework_example().strip().splitlines()) <= 10


@pytest.mark.slow
def test_example_runs_and_learns(mirror):
    out = subprocess.run([sys.executable, "-c", _homework_example()], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    match = re.search(r"([\d.]+) ± ([\d.]+)% \(600 episodes\)", out.stdout)
    assert match, out.stdout
    assert float(match.group(1)) > 70.0  # 100 episodes of training: far above chance (20%)


def _multitask_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- homework-example-multitask.*?-->\n```python\n(.*?)```", readme, re.S)
    assert match, "README.md lost its marked multi-task homework example"
    return match.group(1)


def test_multitask_example_is_ten_lines_and_uses_uncertainty_weighting():
    code = _multitask_example()
    assert len(code.strip().splitlines()) <= 10
    assert 'method="uncertainty"' in code and "HardSharing" in code and "load_multimnist" in code


@pytest.mark.slow
def test_multitask_example_runs_and_learns_both_tasks(mirror):
    out = subprocess.run([sys.executable, "-c", _multitask_example()], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    accuracies = dict(re.findall(r"'accuracy/(left|right|mean)': '([\d.]+)%'", out.stdout))
    assert set(accuracies) == {"left", "right", "mean"}, out.stdout
    assert min(float(v) for v in accuracies.values()) > 70.0  # chance is 10%


def _domain_adaptation_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- domain-adaptation-example.*?-->\n```python\n(.*?)```", readme, re.S)
    assert match, "README.md lost its marked domain-adaptation example"
    return match.group(1)


def test_domain_adaptation_example_is_ten_lines():
    assert len(_domain_adaptation_example().strip().splitlines()) <= 10


@pytest.mark.slow
def test_domain_adaptation_example_runs_and_adapts(mirror):
    pytest.importorskip("sklearn")
    out = subprocess.run([sys.executable, "-c", _domain_adaptation_example()], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    found = dict(re.findall(r"(source_only|dann): digits accuracy ([\d.]+)", out.stdout))
    assert set(found) == {"source_only", "dann"}, out.stdout
    source_only, dann = float(found["source_only"]), float(found["dann"])
    assert source_only > 0.3, "the MNIST network already beats chance (10%) on digits"
    assert dann > source_only + 0.05, "DANN improves digits accuracy (by 19.5 points in our run)"
