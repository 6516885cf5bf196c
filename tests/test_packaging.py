"""The pins CI tested are the pins every install path uses."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        name, _, version = line.partition("==")
        pins[name.strip().lower()] = version.strip()
    return pins


def test_constraints_pin_the_tested_toolchain():
    pins = _pins()
    assert pins["torch"] == "2.13.0"  # no local "+cpu" label: matches the CPU and CUDA wheels
    major, minor, patch = (int(x) for x in re.findall(r"\d+", pins["jupyter-book"])[:3])
    assert (1, 0, 4) <= (major, minor, patch) < (2, 0, 0)
    for tool in ("nbval", "pytest", "hypothesis", "ruff", "mypy", "sphinx-mathjax-offline",
                 "numpy", "matplotlib", "ipykernel"):
        assert tool in pins, f"{tool} is not pinned"
    assert not any(name.startswith("nvidia-") for name in pins), "a CUDA wheel slipped in"


def test_environment_yml_uses_the_same_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    assert "-c constraints.txt" in pip and any(p.startswith("-e .") for p in pip)


def test_pyproject_pins_jupyter_book_1():
    text = (ROOT / "pyproject.toml").read_text()
    assert '"jupyter-book>=1.0.4,<2"' in text and 'requires-python = ">=3.10"' in text


def test_ci_runs_make_test_and_nothing_else():
    lines = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert lines[-1] == "exec make test"
    assert all(ln.startswith(("set ", "cd ", "exec make test")) for ln in lines)
