"""Parking a checkpoint in the working tree: a machine laid anew resumes it exactly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from companion.experiments import get_config, run_experiment
from companion.experiments.__main__ import main
from companion.experiments.park import ParkError, checkpoint_step, park, parked_dir, unpark
from companion.experiments.paths import run_dir
from tests.experiments.park_worker import SMALL
from tests.two_ranks import run_two_ranks

WORKER = Path(__file__).with_name("park_worker.py")
SINE = get_config("maml-sinusoid").with_iterations(3)
RUN = ["maml-sinusoid", "--iterations", "3"]
QUIET = ["--quiet", "--threads", "1", "--device", "cpu"]
WHERE = {"progress": False, "device": "cpu"}


def _interrupted(tmp_path, crash_on_third_step, runs: str) -> None:
    """Train SMALL in ``runs`` until a Ctrl-C in step 3 (the checkpoint is at step 2)."""
    restore = crash_on_third_step()
    with pytest.raises(KeyboardInterrupt):
        run_experiment(SMALL, results_dir=tmp_path / "never", runs_dir=tmp_path / runs, **WHERE)
    restore()  # the real step again


def test_a_parked_checkpoint_resumes_exactly_on_a_machine_laid_anew(tmp_path, capsys,
                                                                    crash_on_third_step):
    full = run_experiment(SMALL, results_dir=tmp_path / "full", runs_dir=tmp_path / "c0", **WHERE)
    _interrupted(tmp_path, crash_on_third_step, "old")
    (run_dir(SMALL, 0, tmp_path / "old") / "lock").write_text("12345\n")  # a stale lock
    folder, step = park(SMALL, runs=tmp_path / "old", parked=tmp_path / "parked")
    assert step == 2 and folder == tmp_path / "parked" / "maml-sinusoid-it6-seed0"
    assert sorted(p.name for p in folder.iterdir()) == [
        "checkpoint.pt", "config.json", "revisions.txt"]  # not the lock
    shutil.rmtree(tmp_path / "old")  # the machine is laid anew: only the working tree is left
    capsys.readouterr()
    resumed = run_experiment(SMALL, results_dir=tmp_path / "r", runs_dir=tmp_path / "new",
                             parked=tmp_path / "parked", **WHERE)
    err = capsys.readouterr().err
    assert "resuming from the parked checkpoint" in err and "(step 2)" in err
    assert "removed the parked checkpoint" in err and not folder.exists()
    assert resumed["loss_curve"] == pytest.approx(full["loss_curve"])
    assert resumed["mse_vs_steps"] == full["mse_vs_steps"]
    assert [s["first"] for s in resumed["training_segments"]] == [1, 3]  # both parts recorded


@pytest.mark.slow
def test_two_processes_both_resume_from_a_parked_checkpoint(tmp_path):
    run_two_ranks(WORKER, str(tmp_path / "straight"), "", "")
    run_two_ranks(WORKER, str(tmp_path / "old"), "stop-in-step-3", "")
    folder, step = park(SMALL, runs=tmp_path / "old" / "runs", parked=tmp_path / "p")
    assert step == 2
    run_two_ranks(WORKER, str(tmp_path / "new"), "", str(tmp_path / "p"))  # a machine anew
    straight = torch.load(tmp_path / "straight" / "r" / "maml-sinusoid-it6-seed0.pt",
                          weights_only=True)["state_dict"]
    resumed = torch.load(tmp_path / "new" / "r" / "maml-sinusoid-it6-seed0.pt",
                         weights_only=True)["state_dict"]
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert not folder.exists()


def test_an_interrupted_run_keeps_the_parked_copy(tmp_path, crash_on_third_step):
    _interrupted(tmp_path, crash_on_third_step, "old")
    folder, _ = park(SMALL, runs=tmp_path / "old", parked=tmp_path / "p")
    restore = crash_on_third_step()
    with pytest.raises(KeyboardInterrupt):  # takes it back (step 2), stops in step 5
        run_experiment(SMALL, results_dir=tmp_path / "r", runs_dir=tmp_path / "new",
                       parked=tmp_path / "p", **WHERE)
    restore()
    assert checkpoint_step(folder) == 2 and not (tmp_path / "r").exists()
    assert checkpoint_step(run_dir(SMALL, 0, tmp_path / "new")) == 4


def test_the_copy_further_along_wins(tmp_path, crash_on_third_step):
    _interrupted(tmp_path, crash_on_third_step, "old")  # step 2
    folder, _ = park(SMALL, runs=tmp_path / "old", parked=tmp_path / "p")
    run_experiment(SMALL, results_dir=tmp_path / "r", runs_dir=tmp_path / "old", **WHERE)
    assert unpark(SMALL, runs=tmp_path / "old", parked=tmp_path / "p") == (2, 6, False)
    assert checkpoint_step(run_dir(SMALL, 0, tmp_path / "old")) == 6  # the local one is kept
    assert park(SMALL, runs=tmp_path / "old", parked=tmp_path / "p")[1] == 6  # replaces 2
    _interrupted(tmp_path, crash_on_third_step, "fresh")  # another machine, at step 2
    with pytest.raises(ParkError, match=r"step 6, further along.*\(step 2\).*--force"):
        park(SMALL, runs=tmp_path / "fresh", parked=tmp_path / "p")
    assert checkpoint_step(folder) == 6
    found = unpark(SMALL, runs=tmp_path / "fresh", parked=tmp_path / "p")
    assert found == (6, 2, True) and checkpoint_step(run_dir(SMALL, 0, tmp_path / "fresh")) == 6
    assert "further along than the runs folder's checkpoint at step 2" in found.note(folder)
    assert park(SMALL, runs=tmp_path / "fresh", parked=tmp_path / "p", force=True)[1] == 6


def test_cli_parks_takes_back_and_removes_the_spent_copy(tmp_path, capsys):
    first = ["--results", str(tmp_path / "r1"), "--runs", str(tmp_path / "c1")]
    assert main(["run", *RUN, *first, *QUIET]) == 0
    capsys.readouterr()
    parked = str(tmp_path / "parked")
    assert main(["park", *RUN, "--runs", str(tmp_path / "c1"), "--parked", parked]) == 0
    assert "at step 3 of 3" in capsys.readouterr().out
    second = ["--results", str(tmp_path / "r2"), "--runs", str(tmp_path / "c2"),
              "--parked", parked]
    assert main(["run", *RUN, *second, *QUIET]) == 0
    err = capsys.readouterr().err
    assert "resuming from the parked checkpoint" in err and "(step 3)" in err
    assert "removed the parked checkpoint" in err and not parked_dir(SINE, 0, parked).exists()
    assert checkpoint_step(run_dir(SINE, 0, tmp_path / "c2")) == 3
    assert (tmp_path / "r2" / "maml-sinusoid-it3-seed0.json").is_file()


def test_park_without_a_run_says_what_is_there(tmp_path, capsys):
    other = get_config("maml-sinusoid").with_iterations(5)
    run_dir(other, 0, tmp_path / "c").mkdir(parents=True)
    assert main(["park", *RUN, "--runs", str(tmp_path / "c"), "--parked",
                 str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert "not a run folder" in err and "maml-sinusoid-it5-seed0" in err and "--seed" in err
    assert not (tmp_path / "p").exists()
    run_dir(SINE, 0, tmp_path / "c").mkdir()
    (run_dir(SINE, 0, tmp_path / "c") / "config.json").write_text(json.dumps(SINE.key(0)))
    assert main(["park", *RUN, "--runs", str(tmp_path / "c"), "--parked",
                 str(tmp_path / "p")]) == 2
    assert "no checkpoint yet" in capsys.readouterr().err


def test_a_parked_copy_of_another_configuration_is_refused(tmp_path, capsys):
    run_experiment(SINE, results_dir=tmp_path / "r", runs_dir=tmp_path / "c", threads=1, **WHERE)
    park(SINE, runs=tmp_path / "c", parked=tmp_path / "p")
    other = get_config("maml-sinusoid").with_iterations(4)
    parked_dir(SINE, 0, tmp_path / "p").rename(parked_dir(other, 0, tmp_path / "p"))
    with pytest.raises(ParkError, match=r"another configuration \(differing in iterations\)"):
        unpark(other, runs=tmp_path / "c2", parked=tmp_path / "p")
    assert not (tmp_path / "c2").exists()  # nothing copied
    assert main(["run", "maml-sinusoid", "--iterations", "4", "--runs", str(tmp_path / "c2"),
                 "--parked", str(tmp_path / "p"), "--results", str(tmp_path / "r2"),
                 *QUIET]) == 2
    err = capsys.readouterr().err
    assert "another configuration" in err and "git rm -r" in err
    assert not (tmp_path / "r2").exists() and not (run_dir(other, 0, tmp_path / "c2") /
                                                    "checkpoint.pt").exists()


@pytest.mark.parametrize("cut", [0.5, 0.9])  # torch raises RuntimeError or OSError
def test_a_truncated_parked_checkpoint_is_refused(tmp_path, cut):
    run_experiment(SINE, results_dir=tmp_path / "r", runs_dir=tmp_path / "c", threads=1, **WHERE)
    folder, _ = park(SINE, runs=tmp_path / "c", parked=tmp_path / "p")
    data = (folder / "checkpoint.pt").read_bytes()
    (folder / "checkpoint.pt").write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ParkError, match=r"cannot be used.*Park it again.*git rm -r"):
        unpark(SINE, runs=tmp_path / "c3", parked=tmp_path / "p")
    assert not (tmp_path / "c3").exists()
