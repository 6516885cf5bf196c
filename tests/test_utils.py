"""Seeding, device choice, atomic writes, load-or-run caching, show_source."""

from __future__ import annotations

import json
import os
import pickle
import random
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from companion.utils import (
    atomic_write,
    describe_device,
    get_device,
    git_revision,
    load_or_run,
    read_record,
    seed_everything,
    show_source,
    write_record,
)

ROOT = Path(__file__).resolve().parents[1]


def test_seed_everything_makes_all_generators_repeat():
    def draw(g: torch.Generator) -> tuple:
        legacy_numpy = np.random.rand()  # noqa: NPY002 - the legacy global is what is seeded
        return random.random(), legacy_numpy, torch.rand(1).item(), torch.rand(1, generator=g)

    assert draw(seed_everything(3)) == draw(seed_everything(3))
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)


def test_get_device(monkeypatch):
    monkeypatch.delenv("COMPANION_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert get_device().type == expected
    assert get_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("COMPANION_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    with pytest.raises(ValueError, match="not a device"):
        get_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            get_device("cuda")
    assert describe_device("cpu").startswith("cpu (")


def test_atomic_write_renames_only_on_success(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_write(target) as tmp:
        tmp.write_text("done")
    assert target.read_text() == "done"
    with pytest.raises(RuntimeError), atomic_write(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "done" and sorted(p.name for p in tmp_path.iterdir()) == [
        "out.txt"]


@pytest.mark.parametrize("suffix", [".json", ".pt"])
def test_load_or_run_caches_by_key(tmp_path, suffix):
    calls = []

    def run() -> dict:
        calls.append(1)
        return {"accuracy": 0.5 + len(calls)}

    path = tmp_path / f"result{suffix}"
    assert load_or_run(path, run, key={"lr": 0.1}) == {"accuracy": 1.5}
    assert load_or_run(path, run, key={"lr": 0.1}) == {"accuracy": 1.5}
    assert len(calls) == 1
    assert load_or_run(path, run, key={"lr": 0.2}) == {"accuracy": 2.5}  # new key: rerun
    assert load_or_run(path, run, key={"lr": 0.2}, rerun=True) == {"accuracy": 3.5}
    if suffix == ".json":
        record = json.loads(path.read_text())
        assert record["key"] == {"lr": 0.2} and "wall_time_s" in record and "torch" in record


def test_load_or_run_returns_the_same_thing_on_a_miss_and_a_hit(tmp_path):
    path = tmp_path / "r.json"
    first = load_or_run(path, lambda: {1: (0.5, 0.6)}, key={})
    assert first == load_or_run(path, lambda: None, key={}) == {"1": [0.5, 0.6]}


def test_load_or_run_rejects_bad_paths_and_keys(tmp_path):
    with pytest.raises(ValueError, match=r"\.json or \.pt"):
        load_or_run(tmp_path / "x.pkl", lambda: 1, key={})
    with pytest.raises(TypeError):
        load_or_run(tmp_path / "x.json", lambda: 1, key={"f": object()})


def test_show_source_returns_the_real_code():
    shown = show_source(seed_everything)
    text = getattr(shown, "data", shown)
    assert "def seed_everything" in text and "torch.manual_seed(seed)" in text


class _Payload:
    """Unpickling this object creates the file ``marker`` (a stand-in for any code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_crafted_pt_record_is_refused_without_running_its_payload(tmp_path):
    marker = tmp_path / "marker"
    pickle.loads(pickle.dumps(_Payload(marker)))  # the payload is live under plain unpickling
    assert marker.is_file()
    marker.unlink()
    path = tmp_path / "record.pt"
    torch.save({"key": {}, "result": _Payload(marker)}, path)
    with pytest.raises(ValueError, match=r"record\.pt holds objects other than tensors"):
        read_record(path)
    with pytest.raises(ValueError, match="holds objects other than tensors"):
        load_or_run(path, lambda: 1, key={})
    assert not marker.exists()


def test_pt_records_hold_tensors_and_plain_values_only(tmp_path):
    path = tmp_path / "r.pt"
    result = {"w": torch.arange(3.0), "curve": [0.5, 0.25], "shape": (2, 3), "note": None}
    stored = load_or_run(path, lambda: result, key={"lr": 0.1})
    again = read_record(path)["result"]
    assert stored is result and again.keys() == result.keys()
    torch.testing.assert_close(again["w"], result["w"])
    with pytest.raises(ValueError, match="NumPy"):  # refused when written, not when read
        write_record(tmp_path / "np.pt", key={}, result=np.float64(0.5), wall_time_s=0.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.pt"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_atomic_write_gives_the_permissions_open_would(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        with atomic_write(tmp_path / "out.txt") as tmp:
            tmp.write_text("x")
        with open(tmp_path / "plain.txt", "w") as f:
            f.write("x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == mode


IMPORT_EVERYTHING = """
import os, pkgutil, importlib, json, random
calls = []
real_umask = os.umask
os.umask = lambda mask: calls.append(mask) or real_umask(mask)
import torch
before = (torch.get_num_threads(), str(torch.get_default_dtype()), dict(os.environ),
          os.getcwd(), torch.get_rng_state().tolist(), random.getstate())
import companion
names = sorted(m.name for m in pkgutil.walk_packages(companion.__path__, "companion.")
               if not m.name.endswith("__main__"))
for name in names:
    importlib.import_module(name)
after = (torch.get_num_threads(), str(torch.get_default_dtype()), dict(os.environ),
         os.getcwd(), torch.get_rng_state().tolist(), random.getstate())
what = ("threads", "default dtype", "environment", "cwd", "torch RNG", "random")
print(json.dumps({"umask_calls": calls, "modules": len(names),
                  "changed": [w for w, b, a in zip(what, before, after) if b != a]}))
"""


def test_importing_companion_changes_no_process_wide_state():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING], capture_output=True,
                         text=True, env=env, cwd=ROOT, check=True).stdout
    report = json.loads(out.splitlines()[-1])
    assert report["modules"] > 10  # every module of the package was imported
    assert report["umask_calls"] == [] and report["changed"] == []


def test_git_revision_ignores_results_runs_and_parked_checkpoints(tmp_path):
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                       cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    for name in ("code.py", "results/a.json", "runs/b.txt", "parked/r-seed0/checkpoint.pt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("1\n")
    git("add", "-A")
    git("commit", "-qm", "first")
    clean = git_revision(tmp_path)
    assert clean is not None and len(clean) == 40
    for name in ("results/a.json", "runs/b.txt", "parked/r-seed0/checkpoint.pt"):
        (tmp_path / name).write_text("2\n")
    (tmp_path / "parked" / "r-seed0" / "checkpoint.pt").unlink()  # a spent copy removed
    assert git_revision(tmp_path) == clean
    (tmp_path / "code.py").write_text("2\n")
    assert git_revision(tmp_path) == clean + "+dirty"
