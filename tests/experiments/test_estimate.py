"""`estimate`: a measured, scaled cost of a configuration that writes nothing."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from companion.experiments import MAMLExperiment, get_config
from companion.experiments import estimate as estimate_module
from companion.experiments.__main__ import main
from companion.experiments.estimate import RunEstimate, estimate_run

TINY = MAMLExperiment(name="tiny-maml", method="maml", n_way=3, test_n_way=3,
                      meta_batch_size=2, iterations=40, val_every=10, val_episodes=50,
                      test_episodes=30, test_n_query=2)


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_omniglot_estimate_scales_each_part_to_the_budget(mirror, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COMPANION_RUNS_DIR", str(tmp_path / "runs"))
    before = _files(tmp_path)
    est = estimate_run(TINY, device="cpu", steps=2, episodes=3)
    assert _files(tmp_path) == before, "nothing written, no checkpoint"
    assert len(est.step_seconds) == 2 and all(t > 0 for t in est.step_seconds)
    assert min(est.step_seconds) <= est.seconds_per_step <= max(est.step_seconds)
    assert est.train_seconds == pytest.approx(est.seconds_per_step * 40)
    assert est.validation_seconds > 0 and est.test_seconds > 0
    assert est.total_seconds == pytest.approx(
        est.train_seconds + est.validation_seconds + est.test_seconds)
    report = est.report(TINY)
    assert "40 steps" in report and "4 x 50 episodes" in report and "30 episodes" in report
    assert est.device.startswith("cpu")
    if sys.platform != "win32":  # the peak resident set: at least PyTorch, at most the RAM
        ram_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
        assert est.peak_memory_mb is not None and 50 < est.peak_memory_mb < ram_mb
        assert f"{est.peak_memory_mb / 1024:7.2f} GiB (the process's peak" in report


@pytest.mark.parametrize(("platform", "maxrss", "mib"), [
    ("linux", 3 * 1024 * 1024, 3072.0),  # KiB on Linux
    ("darwin", 3 * 2**30, 3072.0),  # bytes on macOS
])
def test_peak_memory_reads_ru_maxrss_in_its_platform_units(monkeypatch, platform, maxrss, mib):
    resource = pytest.importorskip("resource")
    monkeypatch.setattr(estimate_module.sys, "platform", platform)
    monkeypatch.setattr(resource, "getrusage",
                        lambda who: SimpleNamespace(ru_maxrss=maxrss))
    assert estimate_module._peak_memory_mb(torch.device("cpu")) == mib


def test_no_validation_when_the_configuration_has_none():
    cfg = get_config("maml-sinusoid")
    est = estimate_run(cfg, device="cpu", steps=1, episodes=2)
    assert cfg.val_every == 0 and est.validation_seconds == 0
    assert est.train_seconds == pytest.approx(est.seconds_per_step * cfg.iterations)
    assert est.test_seconds > 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"steps": 0}, "steps must be an int >= 1, got 0"),
    ({"steps": True}, "steps must be an int >= 1, got True"),
    ({"steps": 2.0}, "steps must be an int >= 1, got 2.0"),
    ({"episodes": 1}, r"episodes must be an int >= 2 .*got 1"),
])
def test_bad_counts_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        estimate_run(get_config("maml-sinusoid"), **kwargs)


def _estimate(load: float | None, peak: float | None = None, device: str = "cpu"
              ) -> RunEstimate:
    return RunEstimate(name="x", device=device, threads=1, seconds_per_step=2.0,
                       step_seconds=(1.9, 2.0, 2.2), train_seconds=7200.0,
                       validation_seconds=360.0, test_seconds=1800.0, load_average=load, cpus=2,
                       peak_memory_mb=peak)


def test_report_gives_hours_and_warns_on_a_busy_machine():
    cfg = get_config("maml-omniglot-5w1s")
    quiet = _estimate(0.1)
    assert not quiet.busy and "note:" not in quiet.report(cfg)
    assert "2.60 h (156 min)" in quiet.report(cfg)  # 7200 + 360 + 1800 s
    busy = _estimate(1.5)
    assert busy.busy and "load average was 1.50 on 2 CPUs" in busy.report(cfg)
    assert not _estimate(None).busy  # a platform without a load average


def test_report_gives_the_peak_memory_where_the_platform_has_it():
    cfg = get_config("maml-omniglot-5w1s")
    assert "memory" not in _estimate(0.1).report(cfg)
    assert "3.00 GiB (the process's peak resident set" in _estimate(0.1, 3072).report(cfg)
    gpu = _estimate(0.1, 512, "cuda (NVIDIA H200)")
    assert "0.50 GiB (reserved by PyTorch's CUDA allocator" in gpu.report(cfg)


def test_cli_prints_the_estimate_and_refuses_bad_options(capsys):
    assert main(["estimate", "maml-sinusoid", "--steps", "1", "--episodes", "2",
                 "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("maml-sinusoid on cpu") and "70000 steps" in out and "total" in out
    assert main(["estimate", "maml-sinusoid", "--steps", "0"]) == 2
    assert "steps must be an int >= 1" in capsys.readouterr().err
    assert main(["estimate", "maml-sinusoid", "--threads", "0"]) == 2
    assert "--threads must be >= 1" in capsys.readouterr().err
