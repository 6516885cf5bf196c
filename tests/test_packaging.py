"""The pins CI tested are the pins every install path uses."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
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


def test_results_dir_order_env_checkout_installed(tmp_path, monkeypatch):
    import companion._stored
    from companion.experiments import results_dir

    monkeypatch.delenv("COMPANION_RESULTS_DIR", raising=False)
    assert results_dir() == ROOT / "results"  # a checkout (this one)
    monkeypatch.setenv("COMPANION_RESULTS_DIR", str(tmp_path / "mine"))
    assert results_dir() == tmp_path / "mine"
    monkeypatch.delenv("COMPANION_RESULTS_DIR")
    stored = tmp_path / "site-packages" / "companion" / "_stored"  # an installed package
    (stored / "results").mkdir(parents=True)
    (stored / "__init__.py").touch()
    monkeypatch.setattr(companion._stored, "__file__", str(stored / "__init__.py"))
    assert results_dir() == stored / "results"
    (stored / "results").rmdir()  # a package built without its data
    assert results_dir() == Path("results")


def test_benchmarks_dir_order_env_checkout_installed_and_independent_of_results(
        tmp_path, monkeypatch):
    import companion._stored
    from companion.experiments import benchmarks_dir

    monkeypatch.delenv("COMPANION_BENCHMARKS_DIR", raising=False)
    monkeypatch.setenv("COMPANION_RESULTS_DIR", str(tmp_path / "elsewhere"))  # must not matter
    assert benchmarks_dir() == ROOT / "benchmarks" / "results"  # a checkout (this one)
    monkeypatch.setenv("COMPANION_BENCHMARKS_DIR", str(tmp_path / "tables"))
    assert benchmarks_dir() == tmp_path / "tables"
    monkeypatch.delenv("COMPANION_BENCHMARKS_DIR")
    stored = tmp_path / "site-packages" / "companion" / "_stored"  # an installed package
    (stored / "benchmarks" / "results").mkdir(parents=True)
    (stored / "__init__.py").touch()
    monkeypatch.setattr(companion._stored, "__file__", str(stored / "__init__.py"))
    assert benchmarks_dir() == stored / "benchmarks" / "results"
    (stored / "benchmarks" / "results").rmdir()
    assert benchmarks_dir() == Path("benchmarks") / "results"


def test_a_fresh_run_from_an_installed_package_writes_to_the_cache_not_the_package(
        tmp_path, monkeypatch):
    """run=True must not write into site-packages; the result is found there afterwards."""
    import companion._stored
    from companion.experiments import load_or_run_experiment, runner

    monkeypatch.delenv("COMPANION_RESULTS_DIR", raising=False)
    monkeypatch.setenv("COMPANION_RUNS_DIR", str(tmp_path / "cache" / "runs"))
    stored = tmp_path / "site-packages" / "companion" / "_stored"
    (stored / "results").mkdir(parents=True)
    (stored / "__init__.py").touch()
    monkeypatch.setattr(companion._stored, "__file__", str(stored / "__init__.py"))
    written = []

    def fake_run(cfg, *, seed, device, results_dir):
        written.append(Path(results_dir))
        Path(results_dir).mkdir(parents=True)
        record = {"key": cfg.key(seed), "result": {"test": 0.5}}
        runner.result_path(cfg, seed, results_dir).write_text(json.dumps(record))
        return record["result"]

    monkeypatch.setattr(runner, "run_experiment", fake_run)
    assert load_or_run_experiment("maml-sinusoid", run=True) == {"test": 0.5}
    assert written == [tmp_path / "cache" / "results"]
    assert not any((stored / "results").iterdir()), "nothing written into the package"
    monkeypatch.setattr(runner, "run_experiment", None)  # a second call must not run again
    assert load_or_run_experiment("maml-sinusoid", run=True) == {"test": 0.5}


def test_setup_py_ships_every_stored_result_in_the_repository_layout():
    """The wheel maps results/ and benchmarks/results/ onto companion/_stored/ (the chapters
    find the benchmark tables at results_dir().parent / "benchmarks" / "results")."""
    text = (ROOT / "setup.py").read_text()
    assert '"companion._stored.results": "results"' in text
    assert '"companion._stored.benchmarks.results": "benchmarks/results"' in text
    assert '["*.json", "*.pt"]' in text
    shipped = {p.suffix for p in (ROOT / "results").iterdir()} - {".md"}
    assert shipped <= {".json", ".pt"}, f"results/ holds files the wheel leaves out: {shipped}"
    assert not (ROOT / "companion" / "_stored" / "results").exists(), "a stale copy in the tree"


CHAPTER = "02_maml.ipynb"  # loads stored results, stored weights and benchmark tables


@pytest.mark.slow
def test_a_chapter_runs_from_an_installed_wheel_outside_the_checkout(tmp_path, mirror):
    """Build the wheel, install it (not editable) into a fresh virtual environment, copy one
    chapter into an empty folder and execute it there under nbval, as a reader on Colab would.

    The environment gets the test tools (torch, nbval, ...) from this interpreter's
    site-packages through a .pth line, which adds the folder but none of its .pth files, so the
    checkout's editable install stays invisible: ``companion`` is the wheel's copy.
    """
    source = tmp_path / "src"
    for name in ("pyproject.toml", "setup.py", "README.md"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("companion", "results", "benchmarks/results"):
        shutil.copytree(ROOT / folder, source / folder, ignore=skip)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "-w", str(tmp_path / "wheels"), str(source)], check=True)
    (wheel,) = (tmp_path / "wheels").glob("companion-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv",
                    "--without-pip", str(venv)], check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # --target ignores what is installed elsewhere (never touches this environment's install)
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(site),
                    str(wheel)], check=True)
    (site / "test-tools.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    reader = tmp_path / "reader"  # an empty folder with one chapter: no checkout anywhere
    reader.mkdir()
    shutil.copy(ROOT / "book" / CHAPTER, reader / CHAPTER)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "COMPANION_RESULTS_DIR", "PYTEST_ADDOPTS")}
    env.setdefault("COMPANION_DATA_DIR", str(ROOT / "data"))  # reuse the decoded cache
    where = subprocess.run(
        [str(python), "-c", "import companion, companion.experiments as e; "
         "print(companion.__file__); print(e.results_dir())"],
        cwd=reader, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert Path(where[0]).is_relative_to(site), f"imported {where[0]}, not the wheel's copy"
    assert Path(where[1]) == site / "companion" / "_stored" / "results"
    run = subprocess.run(
        [str(python), "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p",
         "no:cacheprovider", "-q", CHAPTER],
        cwd=reader, env=env, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]


def test_make_test_fast_is_lint_and_the_unit_tests_without_slow_ones():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test-fast: lint unit-fast$", makefile, re.M)
    recipe = re.search(r"^unit-fast: .*\n\t(.*)$", makefile, re.M).group(1)
    assert 'pytest tests -m "not slow"' in recipe and "nbval" not in recipe
    assert re.search(r"^test: lint unit notebooks book-check site-test$", makefile, re.M)
    assert "make test-fast" in (ROOT / "README.md").read_text()
    assert "slow:" in (ROOT / "pyproject.toml").read_text()  # the marker is registered
