"""The experiment command: result files with provenance, exact resume, refused mix-ups, CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from companion.experiments import (
    CONFIGS,
    JointExperiment,
    MAMLExperiment,
    MetricExperiment,
    get_config,
    run_experiment,
)
from companion.experiments.__main__ import main
from companion.experiments.methods.joint import JOINT_LR_GRID
from companion.experiments.runner import describe_threads, run_id
from companion.utils import read_record

TINY = MAMLExperiment(name="tiny-maml", method="maml", n_way=3, test_n_way=3,
                      meta_batch_size=2, iterations=4, val_every=2, val_episodes=2,
                      test_episodes=3, test_n_query=2, checkpoint_every=2)
SINE = JointExperiment(name="tiny-sine", method="joint", dataset="sinusoid", n_shot=5,
                       n_query=5, test_shots=(5,), meta_batch_size=4, iterations=5,
                       val_every=0, test_episodes=4, eval_inner_steps=2, n_way=1,
                       test_n_way=1, checkpoint_every=5)


def test_result_file_has_numbers_protocol_and_provenance(mirror, tmp_path):
    result = run_experiment(TINY, seed=3, results_dir=tmp_path / "r", runs_dir=tmp_path / "c",
                            progress=False, device="cpu")
    record = read_record(tmp_path / "r" / "tiny-maml-it4-seed3.json")
    assert record["key"] == TINY.key(3) and record["key"]["seed"] == 3
    assert "outer_lr" not in record["key"]  # defaults are left out of keys
    assert record["result"] == json.loads(json.dumps(result))
    assert 0 <= result["test"]["mean"] <= 1 and result["test"]["n_episodes"] == 3
    assert result["protocol"]["n_way"] == 3 and result["protocol"]["inner_steps"] == 3
    assert [v["iteration"] for v in result["validation"]] == [2, 4]
    assert result["device"].startswith("cpu") and len(result["loss_curve"]) == 4
    assert "git_revision" in record and "torch" in record and record["wall_time_s"] > 0
    assert record["git_revisions_of_run"] == [str(record["git_revision"])]
    assert result["training_segments"] == [
        {"first": 1, "last": 4, "threads": torch.get_num_threads(), "processes": 1,
         "device": "cpu", "seconds": pytest.approx(result["train_seconds"], abs=0.1)}]
    assert "run tiny-maml --seed 3 --iterations 4" in result["command"]
    weights = torch.load(tmp_path / "r" / "tiny-maml-it4-seed3.pt")
    assert weights["key"] == TINY.key(3) and "model.head.weight" in weights["state_dict"]


def test_interrupted_run_resumes_exactly(mirror, tmp_path, crash_on_third_step):
    full = run_experiment(TINY, results_dir=tmp_path / "a", runs_dir=tmp_path / "ca",
                          progress=False, device="cpu")
    restore = crash_on_third_step()
    with pytest.raises(KeyboardInterrupt):
        run_experiment(TINY, results_dir=tmp_path / "b", runs_dir=tmp_path / "cb",
                       progress=False, device="cpu")
    assert not (tmp_path / "b").exists()  # no result for an unfinished run
    assert not (tmp_path / "cb" / "tiny-maml-it4-seed0" / "lock").exists()  # released
    restore()  # the real step again
    resumed = run_experiment(TINY, results_dir=tmp_path / "b", runs_dir=tmp_path / "cb",
                             progress=False, device="cpu")
    assert resumed["loss_curve"] == pytest.approx(full["loss_curve"])
    assert resumed["test"] == pytest.approx(full["test"])
    a = torch.load(tmp_path / "a" / "tiny-maml-it4-seed0.pt")["state_dict"]
    b = torch.load(tmp_path / "b" / "tiny-maml-it4-seed0.pt")["state_dict"]
    for k in a:
        torch.testing.assert_close(a[k], b[k])


def test_backward_chunk_reaches_the_learner_and_trains_the_same(mirror, tmp_path, monkeypatch):
    from companion.experiments.registry import spec_for
    from companion.meta.maml import MAML

    chunked = replace(TINY, name="tiny-chunked", backward_chunk=1)
    assert spec_for(chunked).build(chunked, 0).config.backward_chunk == 1
    assert chunked.key(0)["backward_chunk"] == 1 and "backward_chunk" not in TINY.key(0)
    assert get_config("maml-omniglot-20w5s").backward_chunk == 1  # fits a laptop's memory
    real, chunk_sizes = MAML._task_losses, []

    def spy(self, batching, params, sx, *rest):
        chunk_sizes.append(len(sx))
        return real(self, batching, params, sx, *rest)

    monkeypatch.setattr(MAML, "_task_losses", spy)
    runs = []
    for cfg in (TINY, chunked):
        chunk_sizes.clear()
        runs.append(run_experiment(cfg, results_dir=tmp_path / cfg.name,
                                   runs_dir=tmp_path / "c", progress=False, device="cpu"))
        # the training steps' backward chunks: the whole meta-batch, or one task at a time
        assert chunk_sizes == [cfg.backward_chunk or cfg.meta_batch_size] * (
            cfg.iterations * cfg.meta_batch_size // (cfg.backward_chunk or cfg.meta_batch_size))
    assert len(runs[1]["loss_curve"]) == len(runs[0]["loss_curve"]) > 0
    assert runs[1]["loss_curve"] == pytest.approx(runs[0]["loss_curve"], rel=1e-4)
    assert runs[1]["test"]["mean"] == pytest.approx(runs[0]["test"]["mean"], abs=1e-3)


def test_a_checkpoint_of_another_configuration_is_refused(tmp_path):
    run_experiment(SINE, results_dir=tmp_path / "r", runs_dir=tmp_path / "c", progress=False,
                   device="cpu")
    changed = replace(SINE, outer_lr=0.01)
    folder = tmp_path / "c" / run_id(changed, 0)
    (tmp_path / "c" / run_id(SINE, 0)).rename(folder)
    with pytest.raises(ValueError, match="different configuration") as err:
        run_experiment(changed, results_dir=tmp_path / "r", runs_dir=tmp_path / "c",
                       progress=False, device="cpu")
    message = str(err.value)
    assert "differing in outer_lr" in message and f"rm -r {folder}" in message
    assert "nothing was changed" in message
    assert (folder / "checkpoint.pt").is_file() and (folder / "config.json").is_file()


def test_joint_baseline_gets_a_tuned_fine_tuning_rate(tmp_path):
    result = run_experiment(SINE, results_dir=tmp_path, runs_dir=tmp_path / "c",
                            progress=False, device="cpu")
    assert result["fine_tune_lr"]["5"] in JOINT_LR_GRID
    curve = result["mse_vs_steps"]["5"]
    assert len(curve) == 3 and all(point["n_episodes"] == 4 for point in curve)


def test_cli_list_run_and_show(tmp_path, capsys):
    assert main(["list"]) == 0
    assert "maml-omniglot-5w1s" in capsys.readouterr().out
    args = ["run", "maml-sinusoid", "--iterations", "3", "--results", str(tmp_path / "r"),
            "--runs", str(tmp_path / "c"), "--quiet", "--threads", "1", "--device", "cpu"]
    threads = torch.get_num_threads()
    try:
        assert main(args) == 0
    finally:
        torch.set_num_threads(threads)  # leave no global state behind
    path = tmp_path / "r" / "maml-sinusoid-it3-seed0.json"
    assert path.is_file()
    assert main(["show", str(path)]) == 0
    shown = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert shown["iterations"] == 3 and "mse_vs_steps" in shown


def test_cli_help_documents_the_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--seed" in out and "--device" in out and "--iterations" in out


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"method": "sgd"}, "method must be one of"), ({"dataset": "cifar"}, "dataset"),
    ({"iterations": 0}, "iterations"), ({"outer_lr": 0.0}, "outer_lr"),
    ({"test_episodes": 1}, "test_episodes"), ({"val_episodes": 1}, "val_episodes"),
    ({"val_every": -1}, "val_every"), ({"lr_halve_every": -2}, "lr_halve_every"),
    ({"inner_lr": -1.0}, "inner_lr"), ({"n_way": True}, "n_way"),
    ({"backward_chunk": 0}, "backward_chunk must be a positive int"),
    ({"backward_chunk": 32}, r"backward_chunk must be below meta_batch_size \(32\)"),
    ({"test_n_way": 20}, "test_n_way must equal n_way"),
    ({"dataset": "sinusoid"}, "test_shots"),
    ({"dataset": "sinusoid", "test_shots": (5,)}, "n_way and test_n_way must be 1"),
    ({"dataset": "sinusoid", "test_shots": (5,), "n_way": 1, "test_n_way": 1},
     "val_every must be 0"),
    ({"test_shots": (5,)}, "sinusoid experiments only"),
])
def test_bad_maml_configurations(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MAMLExperiment(**{"name": "x", "method": "maml", **kwargs})


@pytest.mark.parametrize(("cls", "kwargs", "message"), [
    (JointExperiment, {"method": "joint"}, "dataset must be one of .'sinusoid',."),
    (MetricExperiment, {"method": "protonet", "dataset": "sinusoid", "test_shots": (5,),
                        "n_way": 1, "test_n_way": 1, "val_every": 0}, "dataset must be one"),
    (MetricExperiment, {"method": "maml"}, "method must be one of"),
    (MetricExperiment, {"method": "protonet", "extra_tests": ((20,),)}, "pairs"),
])
def test_bad_configurations_of_other_families(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**{"name": "x", **kwargs})


def test_unknown_names_and_bad_threads(tmp_path):
    with pytest.raises(ValueError, match="unknown experiment"):
        get_config("maml-imagenet")
    with pytest.raises(ValueError, match="threads"):
        run_experiment(SINE, threads=0, results_dir=tmp_path, runs_dir=tmp_path)
    assert all(name == cfg.name for name, cfg in CONFIGS.items())


def test_keys_survive_new_fields_with_defaults():
    from companion.experiments.configs import canonical, same_experiment

    full = {**TINY.key(0), "outer_lr": 1e-3, "test_shots": [], "inner_batch_size": None}
    assert same_experiment(full, TINY.key(0))  # an old, complete key still matches
    assert not same_experiment({**full, "outer_lr": 0.01}, TINY.key(0))
    assert canonical({"seed": 1, "n_way": 5}) == {"seed": 1}


def test_metric_method_run_tests_extra_settings_and_halves_the_rate(mirror, tmp_path):
    cfg = MetricExperiment(name="tiny-proto", method="protonet", n_way=4, n_shot=1, n_query=2,
                           test_n_way=3, test_n_shot=1, test_n_query=2, extra_tests=((6, 1),),
                           meta_batch_size=1, iterations=4, lr_halve_every=2, val_every=0,
                           test_episodes=3, checkpoint_every=2)
    result = run_experiment(cfg, results_dir=tmp_path / "r", runs_dir=tmp_path / "c",
                            progress=False, device="cpu")
    assert set(result["extra_tests"]) == {"6-way 1-shot"}
    assert result["extra_tests"]["6-way 1-shot"]["n_episodes"] == 3
    assert "running statistics" in result["protocol"]["test"]
    state = torch.load(tmp_path / "c" / "tiny-proto-it4-seed0" / "checkpoint.pt",
                       weights_only=True)
    assert state["schedulers"][0]["_last_lr"] == [0.00025]  # 1e-3 halved twice in 4 steps


def test_weights_of_another_configuration_are_refused(tmp_path, monkeypatch):
    from companion.experiments import load_trained
    from companion.experiments.runner import result_path

    monkeypatch.setenv("COMPANION_RESULTS_DIR", str(tmp_path))
    cfg = get_config("maml-sinusoid")
    path = result_path(cfg, 0, tmp_path)
    from companion.utils import write_record

    write_record(path, key=cfg.key(0), result={}, wall_time_s=0.0)
    torch.save({"key": {**cfg.key(0), "outer_lr": 0.5}, "state_dict": {}}, path.with_suffix(".pt"))
    with pytest.raises(ValueError, match="does not hold the weights"):
        load_trained("maml-sinusoid")


def test_a_run_resumed_with_other_threads_says_which_steps_ran_where(mirror, tmp_path,
                                                                      crash_on_third_step):
    where = {"results_dir": tmp_path / "r", "runs_dir": tmp_path / "c", "progress": False,
             "device": "cpu"}
    restore = crash_on_third_step()
    with pytest.raises(KeyboardInterrupt):  # steps 1-2 with 2 threads (checkpoint at 2)
        run_experiment(TINY, threads=2, **where)
    restore()  # the real step again
    resumed = run_experiment(TINY, threads=1, **where)  # steps 3-4 with 1 thread
    assert [(s["first"], s["last"], s["threads"]) for s in resumed["training_segments"]] == [
        (1, 2, 2), (3, 4, 1)]
    assert describe_threads(resumed) == "2 threads (2 steps), then 1 thread (2 steps)"
    # the same command once more only tests the finished checkpoint: no segment is added
    again = run_experiment(TINY, threads=2, **where)
    assert again["training_segments"] == resumed["training_segments"]


def _seg(first: int, last: int, threads: int, processes: int = 1) -> dict[str, int]:
    return {"first": first, "last": last, "threads": threads, "processes": processes}


@pytest.mark.parametrize(("result", "label"), [
    ({"threads": 1}, "1 thread"),  # files from before training_segments
    ({"threads": 2, "processes": 2}, "2 processes x 2 threads"),
    ({"threads": 2, "threads_of_run": [1, 2]}, "1 then 2 threads"),
    ({"threads": 2, "training_segments": [_seg(1, 10, 2), _seg(11, 20, 2)]}, "2 threads"),
    ({"threads": 1, "training_segments": [_seg(1, 5, 1), _seg(6, 8, 2), _seg(9, 9, 1)]},
     "1 thread (5 steps), then 2 threads (3 steps), then 1 thread (1 steps)"),
    ({"threads": 1, "training_segments": [_seg(1, 4, 1, processes=2)]},
     "2 processes x 1 thread"),
    ({"threads": 2, "training_segments": [_seg(401, 500, 2)]},
     "steps 1-400 unrecorded, then 2 threads (100 steps)"),
])
def test_describe_threads_names_every_count_a_run_used(result, label):
    assert describe_threads(result) == label
