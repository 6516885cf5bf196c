"""The method registry: typed family configurations, from_dict, keys, registering a method."""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest
import torch
from torch import nn

from companion.experiments import (
    CONFIGS,
    ExperimentConfig,
    JointExperiment,
    MAMLExperiment,
    MetricExperiment,
    ReptileExperiment,
    build_learner,
    register_experiments,
    register_method,
    registry,
    run_experiment,
)
from companion.experiments.base import KEY_DEFAULTS, AdamTrained
from companion.experiments.configs import config_from_key, key_differences, same_experiment
from companion.experiments.sources import adam_optimizer
from companion.meta.joint import JointTraining
from companion.meta.maml import MAML
from companion.meta.matching import MatchingNetwork
from companion.meta.reptile import Reptile
from companion.models import MLP

FAMILIES = (MAMLExperiment, ReptileExperiment, MetricExperiment, JointExperiment)
SINE = {"dataset": "sinusoid", "n_way": 1, "test_n_way": 1, "test_shots": [5], "val_every": 0}


def test_from_dict_picks_the_family_and_makes_tuples():
    cfg = ExperimentConfig.from_dict({"name": "p", "method": "protonet",
                                      "extra_tests": [[20, 1]], "n_way": 20})
    assert type(cfg) is MetricExperiment and cfg.extra_tests == ((20, 1),)
    cfg = ExperimentConfig.from_dict({"name": "r", "method": "reptile", **SINE,
                                      "inner_optimizer": "adam", "outer_lr": 0.1})
    assert type(cfg) is ReptileExperiment and cfg.test_shots == (5,)
    assert cfg == ReptileExperiment(name="r", method="reptile", dataset="sinusoid", n_way=1,
                                    test_n_way=1, test_shots=(5,), val_every=0,
                                    inner_optimizer="adam", outer_lr=0.1)


@pytest.mark.parametrize(("values", "message"), [
    ({"name": "p", "method": "protonet", "inner_optimizer": "adam"},
     r"not apply to method 'protonet' \(MetricExperiment\): inner_optimizer;"),
    ({"name": "p", "method": "protonet", "inner_lr": 0.1, "inner_steps": 2},
     "not apply to method 'protonet' .*: inner_lr, inner_steps;"),
    ({"name": "m", "method": "maml", "extra_tests": [[20, 1]]},
     "not apply to method 'maml' .*: extra_tests"),
    ({"name": "m", "method": "maml", "final_outer_lr": 0.0}, "final_outer_lr"),
    ({"name": "j", "method": "joint", **SINE, "inner_lr": 0.01},
     "not apply to method 'joint' .*: inner_lr"),
    ({"name": "r", "method": "reptile", "lr_halve_every": 100}, "lr_halve_every"),
    ({"name": "m", "method": "maml", **SINE, "test_n_query": 5},
     "not apply to sinusoid experiments: test_n_query"),
    ({"name": "m", "method": "madml"}, "unknown method 'madml'"),
    ({"name": "m"}, "must name a method"),
    ({"method": "maml"}, "must give name"),
    ({"name": "r", "method": "reptile", "inner_optimizer": "rmsprop"}, "inner_optimizer"),
    ({"name": "r", "method": "reptile", "outer_lr": 2.0}, "outer_lr"),
])
def test_from_dict_refuses_what_would_be_ignored_or_is_invalid(values, message):
    with pytest.raises(ValueError, match=message):
        ExperimentConfig.from_dict(values)


def test_a_family_class_refuses_another_familys_method():
    with pytest.raises(ValueError, match="method must be one of"):
        MetricExperiment.from_dict({"name": "x", "method": "maml"})


def test_family_defaults_are_the_key_defaults():
    """So a field's default means the same in every family and in every stored key."""
    for family in FAMILIES:
        for f in fields(family):
            if f.name in KEY_DEFAULTS:
                default = list(f.default) if isinstance(f.default, tuple) else f.default
                assert default == KEY_DEFAULTS[f.name], (family.__name__, f.name)


def test_keys_leave_out_defaults_and_inapplicable_fields():
    cfg = JointExperiment(name="j", method="joint", **{**SINE, "test_shots": (5,)})
    assert cfg.key(2) == {"name": "j", "method": "joint", "seed": 2, "dataset": "sinusoid",
                          "n_way": 1, "test_n_way": 1, "test_shots": [5], "val_every": 0}
    old = {**cfg.key(2), "inner_lr": 0.01, "inner_steps": 1, "outer_lr": 1e-3}  # a flat key
    assert same_experiment(old, cfg.key(2)) and config_from_key(old) == cfg
    assert not same_experiment({**old, "outer_lr": 0.01}, cfg.key(2))
    assert key_differences({**old, "outer_lr": 0.01}, cfg.key(2)) == ["outer_lr"]
    maml = MAMLExperiment(name="j", method="maml", **{**SINE, "test_shots": (5,)})
    assert not same_experiment(maml.key(2), cfg.key(2))  # another method
    assert not same_experiment({**maml.key(2), "inner_lr": 0.01}, maml.key(2))  # read by MAML


def test_every_registered_configuration_round_trips_through_its_key():
    for name, cfg in CONFIGS.items():
        assert cfg.name == name
        assert config_from_key(cfg.key(0)) == cfg
        assert registry.experiment(name).config is cfg


@pytest.mark.parametrize(("name", "kind"), [
    ("maml-sinusoid", MAML), ("reptile-sinusoid", Reptile), ("joint-sinusoid", JointTraining),
    ("matching-omniglot-1shot", MatchingNetwork)])
def test_builders_come_from_the_registry(name, kind):
    assert isinstance(build_learner(CONFIGS[name]), kind)


def test_registering_twice_or_a_foreign_method_is_refused():
    with pytest.raises(ValueError, match="registered already"):
        register_method("maml", config=MAMLExperiment, build=lambda c, s: nn.Linear(1, 1),
                        evaluate=None, optimizer=adam_optimizer)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"not among MAMLExperiment\.METHODS"):
        register_method("toy", config=MAMLExperiment, build=lambda c, s: nn.Linear(1, 1),
                        evaluate=None, optimizer=adam_optimizer)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="registered already"):
        register_experiments(CONFIGS["maml-sinusoid"])
    with pytest.raises(ValueError, match="unknown experiment"):
        registry.experiment("maml-imagenet")


@dataclass(frozen=True, kw_only=True)
class ToyExperiment(AdamTrained):
    """A new family, as a file under methods/ would declare it."""

    METHODS: ClassVar[tuple[str, ...]] = ("toy",)
    DATASETS: ClassVar[tuple[str, ...]] = ("sinusoid",)

    method: Literal["toy"]
    width: int = 8


def _toy_evaluate(cfg: ToyExperiment, learner: nn.Module, data: dict[str, Any], *,
                  progress: bool, device: torch.device) -> dict[str, Any]:
    return {"test": {"mean": 0.25, "ci95": 0.0, "n_episodes": cfg.test_episodes},
            "protocol": {"width": cfg.width}}


@pytest.fixture
def toy_method(monkeypatch):
    """Register the toy family (removed again afterwards); a tiny configuration of it."""
    monkeypatch.setattr(registry, "_METHODS", dict(registry._METHODS))
    monkeypatch.setattr(registry, "EXPERIMENTS", dict(registry.EXPERIMENTS))
    register_method("toy", config=ToyExperiment,
                    build=lambda cfg, seed: JointTraining(MLP(1, (cfg.width,), 1)),
                    evaluate=_toy_evaluate, optimizer=adam_optimizer)
    cfg = ToyExperiment(name="toy-sinusoid", method="toy", width=4, iterations=2,
                        meta_batch_size=2, checkpoint_every=2, test_episodes=2, **SINE)
    return cfg


def test_a_new_method_needs_only_its_registration(toy_method, tmp_path):
    cfg = ExperimentConfig.from_dict({"name": "t", "method": "toy", "width": 4,
                                      "iterations": 2, "meta_batch_size": 2,
                                      "checkpoint_every": 2, "test_episodes": 2, **SINE})
    assert cfg == ToyExperiment(**{**vars(toy_method), "name": "t"})
    with pytest.raises(ValueError, match=r"not apply to method 'toy' \(ToyExperiment\): inner_lr;"):
        ExperimentConfig.from_dict({"name": "t", "method": "toy", "inner_lr": 0.1})
    result = run_experiment(cfg, results_dir=tmp_path / "r", runs_dir=tmp_path / "c",
                            progress=False, device="cpu")
    assert result["test"]["mean"] == 0.25 and result["protocol"] == {"width": 4}
    assert len(result["loss_curve"]) == 2 and cfg.key(0)["width"] == 4


def test_the_runner_dispatches_on_no_concrete_class():
    source = (Path(sys.modules["companion.experiments.runner"].__file__ or "")).read_text()
    assert "isinstance(learner" not in source and "companion.meta" not in source
    assert "cfg.method ==" not in source and "cfg.method in" not in source


def test_the_base_class_is_not_a_configuration():
    with pytest.raises(ValueError, match="shared base"):
        ExperimentConfig(name="x", method="maml")
