"""Parking a checkpoint in the working tree: a machine laid anew resumes it exactly."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from companion.engine.checkpoint import CheckpointError
from companion.experiments import get_config, run_experiment, runner
from companion.experiments.__main__ import main
from companion.experiments.park import (
    ParkError,
    Unparked,
    checkpoint_step,
    park,
    parked_dir,
    unpark,
)
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
    with pytest.raises(ParkError, match=r"different configuration \(differing in iterations\)"):
        unpark(other, runs=tmp_path / "c2", parked=tmp_path / "p")
    assert not (tmp_path / "c2").exists()  # nothing copied
    assert main(["run", "maml-sinusoid", "--iterations", "4", "--runs", str(tmp_path / "c2"),
                 "--parked", str(tmp_path / "p"), "--results", str(tmp_path / "r2"),
                 *QUIET]) == 2
    err = capsys.readouterr().err
    assert "different configuration" in err and "git rm -r" in err
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


def test_a_parked_copy_never_overwrites_a_runs_folder_of_another_configuration(
        tmp_path, crash_on_third_step):
    _interrupted(tmp_path, crash_on_third_step, "old")  # step 2
    folder, _ = park(SMALL, runs=tmp_path / "old", parked=tmp_path / "p")
    changed = replace(SMALL, outer_lr=0.01)  # the registry was edited; same run id
    stamp = run_dir(changed, 0, tmp_path / "old") / "config.json"
    stamp.write_text(json.dumps(changed.key(0)))
    (run_dir(SMALL, 0, tmp_path / "old") / "checkpoint.pt").unlink()
    with pytest.raises(ValueError, match=r"different configuration \(differing in outer_lr"):
        run_experiment(SMALL, results_dir=tmp_path / "r", runs_dir=tmp_path / "old",
                       parked=tmp_path / "p", **WHERE)
    assert json.loads(stamp.read_text()) == changed.key(0)  # nothing was changed
    assert not (stamp.parent / "checkpoint.pt").exists() and checkpoint_step(folder) == 2


def test_what_a_run_says_about_a_parked_copy_behind_or_level(tmp_path, crash_on_third_step,
                                                              capsys, monkeypatch):
    _interrupted(tmp_path, crash_on_third_step, "old")  # step 2
    folder, _ = park(SMALL, runs=tmp_path / "old", parked=tmp_path / "p")
    assert unpark(SMALL, runs=tmp_path / "old", parked=tmp_path / "p") == (2, 2, False)
    assert Unparked(2, 2, False).note(folder) is None  # level: nothing to say
    restore = crash_on_third_step()
    with pytest.raises(KeyboardInterrupt):  # resumes its own step 2, stops in step 5
        run_experiment(SMALL, results_dir=tmp_path / "r", runs_dir=tmp_path / "old",
                       parked=tmp_path / "p", **WHERE)
    restore()
    assert "parked" not in capsys.readouterr().err
    assert Unparked(2, 4, False).note(folder).endswith(
        "is behind the runs folder's (step 4), which is used: `park` again to update the "
        "committed copy (it is removed when the run finishes)")

    def unreadable(*args, **kwargs):
        raise CheckpointError("checkpoint x was written with 1 processes, this run has 2")

    monkeypatch.setattr(runner, "fit", unreadable)
    with pytest.raises(CheckpointError, match=r"a parked copy of this run is in .*p/maml-"
                                              r"sinusoid-it6-seed0: remove it .*git rm -r"):
        run_experiment(SMALL, results_dir=tmp_path / "r", runs_dir=tmp_path / "old",
                       parked=tmp_path / "p", **WHERE)


def test_a_corrupt_local_checkpoint_says_the_parked_copy_would_be_used(tmp_path,
                                                                        crash_on_third_step):
    _interrupted(tmp_path, crash_on_third_step, "old")
    park(SMALL, runs=tmp_path / "old", parked=tmp_path / "p")
    (run_dir(SMALL, 0, tmp_path / "old") / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ParkError, match="deleting it resumes from the parked copy at step 2"):
        unpark(SMALL, runs=tmp_path / "old", parked=tmp_path / "p")


def test_park_keeps_a_parked_copy_of_another_configuration_unless_forced(tmp_path, capsys):
    run_experiment(SINE, results_dir=tmp_path / "r", runs_dir=tmp_path / "c", threads=1, **WHERE)
    folder, _ = park(SINE, runs=tmp_path / "c", parked=tmp_path / "p")
    changed = replace(SINE, outer_lr=0.01)
    (folder / "config.json").write_text(json.dumps(changed.key(0)))
    args = ["park", *RUN, "--runs", str(tmp_path / "c"), "--parked", str(tmp_path / "p")]
    assert main(args) == 2
    assert "different configuration (differing in outer_lr)" in capsys.readouterr().err
    assert json.loads((folder / "config.json").read_text()) == changed.key(0)
    assert main([*args, "--force"]) == 0
    assert json.loads((folder / "config.json").read_text()) == SINE.key(0)


@pytest.mark.slow
def test_two_processes_stop_cleanly_on_a_bad_parked_copy(tmp_path):
    run_two_ranks(WORKER, str(tmp_path / "old"), "stop-in-step-3", "")
    folder, _ = park(SMALL, runs=tmp_path / "old" / "runs", parked=tmp_path / "p")
    (folder / "config.json").write_text(json.dumps(replace(SMALL, outer_lr=0.01).key(0)))
    run_two_ranks(WORKER, str(tmp_path / "new"), "expect-failure", str(tmp_path / "p"))
