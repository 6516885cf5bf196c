"""The command and the runner under misuse: wrong files for `show`, truncated results,
Ctrl-C in the middle of a run, and where checkpoints go."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from companion.experiments import (
    MAMLExperiment,
    UnreadableResultError,
    get_config,
    load_or_run_experiment,
    load_trained,
    registry,
    run_experiment,
    runs_dir,
    stored_result,
)
from companion.experiments.__main__ import main
from companion.experiments.runner import result_path, run_dir
from companion.utils import write_record

ROOT = Path(__file__).resolve().parents[2]
TINY = MAMLExperiment(name="tiny-sigint", method="maml", dataset="sinusoid", n_way=1,
                      test_n_way=1, n_shot=5, n_query=5, test_shots=(5,), meta_batch_size=2,
                      iterations=8, val_every=0, test_episodes=4, eval_inner_steps=2,
                      inner_lr=0.01, checkpoint_every=2)


@pytest.mark.parametrize(("name", "content", "message"), [
    ("x-seed0.pt", b"PK\x03\x04", r"holds trained weights, not a result; .*/x-seed0\.json"),
    ("x-seed0.json", b'{"key": {"name": "x"}, "res', r"cannot read .*x-seed0\.json"),
    ("x-seed0.json", b'{"key": {}}', "is not a result file"),
    ("x-seed0.txt", b"", "is not a result file"),
    ("gone.json", None, "does not exist"),
])
def test_show_explains_what_it_cannot_read(tmp_path, capsys, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    assert main(["show", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and re.search(message, captured.err)


@pytest.mark.slow
def test_show_on_the_weights_file_exits_2_without_a_traceback(tmp_path):
    weights = tmp_path / "maml-sinusoid-seed0.pt"
    torch.save({"key": {}, "state_dict": {}}, weights)
    done = subprocess.run([sys.executable, "-m", "companion.experiments", "show", str(weights)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "maml-sinusoid-seed0.json" in done.stderr


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPANION_RESULTS_DIR", str(tmp_path))
    return tmp_path


def test_a_truncated_result_names_the_file_and_the_command(results):
    cfg = get_config("maml-sinusoid")
    path = result_path(cfg, 0, results)
    write_record(path, key=cfg.key(0), result={"test": 1}, wall_time_s=0.0)
    path.write_text(path.read_text()[:40])  # cut short, as by a full disk
    command = re.escape("`python -m companion.experiments run maml-sinusoid --seed 0`")
    for load in (stored_result, load_or_run_experiment):
        with pytest.raises(UnreadableResultError, match=f"{re.escape(str(path))}.*{command}"):
            load("maml-sinusoid")
    path.write_text("[1, 2]")
    with pytest.raises(UnreadableResultError, match="no 'key' and 'result'"):
        stored_result("maml-sinusoid")


def test_truncated_or_missing_weights_name_the_command(results):
    cfg = get_config("maml-sinusoid")
    path = result_path(cfg, 0, results)
    write_record(path, key=cfg.key(0), result={}, wall_time_s=0.0)
    with pytest.raises(FileNotFoundError, match="run maml-sinusoid --seed 0"):
        load_trained("maml-sinusoid")
    torch.save({"key": cfg.key(0), "state_dict": {"w": torch.zeros(1000)}},
               path.with_suffix(".pt"))
    data = path.with_suffix(".pt").read_bytes()
    for cut in (0.5, 0.9):  # torch raises RuntimeError or OSError, by where the file ends
        path.with_suffix(".pt").write_bytes(data[: int(len(data) * cut)])
        with pytest.raises(UnreadableResultError, match="cannot read the weights file"):
            load_trained("maml-sinusoid")


def test_checkpoints_go_to_the_user_cache_unless_told_otherwise(monkeypatch, tmp_path):
    monkeypatch.delenv("COMPANION_RUNS_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert runs_dir() == tmp_path / "home" / ".cache" / "companion" / "runs"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert runs_dir() == tmp_path / "xdg" / "companion" / "runs"
    monkeypatch.setenv("COMPANION_RUNS_DIR", str(tmp_path / "mine"))
    assert runs_dir() == tmp_path / "mine"
    assert run_dir(TINY, 3) == tmp_path / "mine" / "tiny-sigint-it8-seed3"
    assert run_dir(TINY, 3, tmp_path / "given") == tmp_path / "given" / "tiny-sigint-it8-seed3"
    run_experiment(TINY, results_dir=tmp_path / "r", progress=False, device="cpu")
    assert (tmp_path / "mine" / "tiny-sigint-it8-seed0" / "checkpoint.pt").is_file()


# The child registers TINY, makes its 5th training step hang (after the checkpoint of step 4),
# says so, and waits to be interrupted.
CHILD = """
import json, sys, time
from companion.experiments import MAMLExperiment, register_experiments
from companion.experiments.__main__ import main
from companion.meta.maml import MAML
register_experiments(MAMLExperiment.from_dict(json.loads(sys.argv[1])))
real, calls = MAML.training_step, [0]  # what fit calls every step
def hang_on_step_5(self, batch, optimizer):
    calls[0] += 1
    if calls[0] == 5:
        print("step 5", flush=True)
        time.sleep(3)  # Ctrl-C arrives mid-step: the step finishes, then the run stops
    return real(self, batch, optimizer)
MAML.training_step = hang_on_step_5
sys.exit(main(["run", "tiny-sigint", "--device", "cpu", "--quiet"] + sys.argv[2:]))
"""


@pytest.mark.slow
def test_ctrl_c_exits_130_and_the_run_resumes_bit_identically(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.EXPERIMENTS, TINY.name, TINY)
    args = ["--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "r")]
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD,
         json.dumps({k: v for k, v in TINY.key(0).items() if k != "seed"}), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert child.stdout is not None and child.stdout.readline() == "step 5\n"
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
        child.communicate()  # reap it and close its pipes, whatever happened above
    assert child.returncode == 130, err
    assert "Traceback" not in err and "resumes when the same command is started again" in err
    folder = tmp_path / "runs" / "tiny-sigint-seed0"
    # the interrupted step completes and is checkpointed (checkpoint_every=2 would give 4)
    assert torch.load(folder / "checkpoint.pt", weights_only=True)["iteration"] == 5
    assert not (folder / "lock").exists() and not (tmp_path / "r").exists()
    resumed = run_experiment(TINY, results_dir=tmp_path / "r", runs_dir=tmp_path / "runs",
                             progress=False, device="cpu")
    full = run_experiment(TINY, results_dir=tmp_path / "r2", runs_dir=tmp_path / "runs2",
                          progress=False, device="cpu")
    assert resumed["loss_curve"] == full["loss_curve"]
    assert resumed["mse_vs_steps"] == full["mse_vs_steps"]
    a = torch.load(tmp_path / "r" / "tiny-sigint-seed0.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "r2" / "tiny-sigint-seed0.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_run_points_to_a_checkpoint_left_in_the_old_runs_folder(tmp_path, monkeypatch, capsys):
    import companion.experiments.__main__ as cli

    calls = []
    monkeypatch.setattr(cli, "run_experiment", lambda cfg, **kw: calls.append(kw) or {})
    monkeypatch.setenv("COMPANION_RUNS_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "maml-sinusoid-it5-seed0").mkdir(parents=True)
    assert main(["run", "maml-sinusoid", "--iterations", "5", "--results", "r"]) == 0
    assert "add `--runs runs` to resume it" in capsys.readouterr().err
    assert calls[0]["runs_dir"] is None  # the default folder: the cache
    assert main(["run", "maml-sinusoid", "--iterations", "5", "--runs", "runs"]) == 0
    assert "--runs runs" not in capsys.readouterr().err and calls[1]["runs_dir"] == "runs"
