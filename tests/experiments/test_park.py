"""Parking a checkpoint in the working tree: a machine laid anew resumes it exactly."""

from __future__ import annotations

import shutil

import pytest
import torch

from companion.experiments import MAMLExperiment, get_config, run_experiment
from companion.experiments.__main__ import main
from companion.experiments.park import ParkError, checkpoint_step, park, parked_dir, unpark
from companion.experiments.runner import run_dir

TINY = MAMLExperiment(name="tiny-park", method="maml", n_way=3, test_n_way=3,
                      meta_batch_size=2, iterations=4, val_every=2, val_episodes=2,
                      test_episodes=3, test_n_query=2, checkpoint_every=2)
SINE = get_config("maml-sinusoid").with_iterations(3)
RUN = ["maml-sinusoid", "--iterations", "3"]
QUIET = ["--quiet", "--threads", "1", "--device", "cpu"]


@pytest.fixture(autouse=True)
def _keep_threads():
    threads = torch.get_num_threads()  # `run --threads 1` changes the process's setting
    yield
    torch.set_num_threads(threads)


def test_a_parked_checkpoint_resumes_exactly_on_a_machine_laid_anew(mirror, tmp_path,
                                                                    crash_on_third_step):
    where = {"progress": False, "device": "cpu"}
    full = run_experiment(TINY, results_dir=tmp_path / "full", runs_dir=tmp_path / "c0", **where)
    restore = crash_on_third_step()
    with pytest.raises(KeyboardInterrupt):
        run_experiment(TINY, results_dir=tmp_path / "r", runs_dir=tmp_path / "old", **where)
    restore()  # the real step again
    folder, step = park(TINY, runs=tmp_path / "old", parked=tmp_path / "parked")
    assert step == 2 and folder == tmp_path / "parked" / "tiny-park-it4-seed0"
    assert sorted(p.name for p in folder.iterdir()) == [
        "checkpoint.pt", "config.json", "revisions.txt"]  # not the lock
    shutil.rmtree(tmp_path / "old")  # the machine is laid anew: only the working tree is left
    assert unpark(TINY, runs=tmp_path / "new", parked=tmp_path / "parked") == 2
    assert checkpoint_step(run_dir(TINY, 0, tmp_path / "new")) == 2
    resumed = run_experiment(TINY, results_dir=tmp_path / "r", runs_dir=tmp_path / "new", **where)
    assert resumed["loss_curve"] == pytest.approx(full["loss_curve"])
    assert resumed["test"] == pytest.approx(full["test"])
    assert [s["first"] for s in resumed["training_segments"]] == [1, 3]  # both parts recorded


def test_cli_parks_takes_back_and_removes_the_spent_copy(tmp_path, capsys):
    first = ["--results", str(tmp_path / "r1"), "--runs", str(tmp_path / "c1")]
    assert main(["run", *RUN, *first, *QUIET]) == 0
    capsys.readouterr()
    parked = str(tmp_path / "parked")
    assert main(["park", *RUN, "--runs", str(tmp_path / "c1"), "--parked", parked]) == 0
    out = capsys.readouterr().out
    assert "at step 3 of 3" in out and "run maml-sinusoid --seed 0 --iterations 3" in out
    second = ["--results", str(tmp_path / "r2"), "--runs", str(tmp_path / "c2"),
              "--parked", parked]
    assert main(["run", *RUN, *second, *QUIET]) == 0
    captured = capsys.readouterr()
    assert "resuming from the parked checkpoint" in captured.err and "(step 3)" in captured.err
    assert "removed the parked checkpoint" in captured.out
    assert not parked_dir(SINE, 0, parked).exists()
    assert checkpoint_step(run_dir(SINE, 0, tmp_path / "c2")) == 3
    assert (tmp_path / "r2" / "maml-sinusoid-it3-seed0.json").is_file()


def test_park_without_a_checkpoint_says_so(tmp_path, capsys):
    assert main(["park", *RUN, "--runs", str(tmp_path / "c"), "--parked",
                 str(tmp_path / "p")]) == 2
    assert "config.json does not exist" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_a_parked_copy_of_another_configuration_is_refused(tmp_path, capsys):
    run_experiment(SINE, results_dir=tmp_path / "r", runs_dir=tmp_path / "c", progress=False,
                   device="cpu", threads=1)
    park(SINE, runs=tmp_path / "c", parked=tmp_path / "p")
    other = get_config("maml-sinusoid").with_iterations(4)
    parked_dir(SINE, 0, tmp_path / "p").rename(parked_dir(other, 0, tmp_path / "p"))
    with pytest.raises(ParkError, match=r"different configuration.*iterations"):
        unpark(other, runs=tmp_path / "c2", parked=tmp_path / "p")
    assert not (tmp_path / "c2").exists()  # nothing copied
    assert main(["run", "maml-sinusoid", "--iterations", "4", "--runs", str(tmp_path / "c2"),
                 "--parked", str(tmp_path / "p"), "--results", str(tmp_path / "r2"),
                 *QUIET]) == 2
    assert "different configuration" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists()


def test_a_truncated_parked_checkpoint_is_refused_and_a_local_one_wins(tmp_path):
    run_experiment(SINE, results_dir=tmp_path / "r", runs_dir=tmp_path / "c", progress=False,
                   device="cpu", threads=1)
    folder, _ = park(SINE, runs=tmp_path / "c", parked=tmp_path / "p")
    local = run_dir(SINE, 0, tmp_path / "c") / "checkpoint.pt"
    before = local.read_bytes()
    data = (folder / "checkpoint.pt").read_bytes()
    (folder / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    assert unpark(SINE, runs=tmp_path / "c", parked=tmp_path / "p") is None  # local one kept
    assert local.read_bytes() == before
    with pytest.raises(ParkError, match="cannot read the checkpoint"):
        unpark(SINE, runs=tmp_path / "c3", parked=tmp_path / "p")
    assert not (run_dir(SINE, 0, tmp_path / "c3") / "checkpoint.pt").exists()
