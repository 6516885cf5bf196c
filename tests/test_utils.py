"""Seeding, device choice, atomic writes, load-or-run caching, show_source."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from companion.utils import (
    atomic_write,
    describe_device,
    get_device,
    load_or_run,
    seed_everything,
    show_source,
)


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
