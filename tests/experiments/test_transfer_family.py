"""The Baseline / Baseline++ family: configuration, learner, training source, evaluation."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from companion.data import ImageClassDataset, LabelledBatch
from companion.experiments import CONFIGS, build_learner, register_method, registry, run_experiment
from companion.experiments.methods.transfer import (
    OMNIGLOT_TRAIN_CLASSES,
    BaselineExperiment,
    episode_learner,
    evaluate,
    training_source,
)
from companion.experiments.sources import adam_optimizer
from companion.meta.joint import JointTraining
from companion.models import MLP
from companion.supervised import SupervisedLearner
from companion.transfer import CosineClassifier, SupportSetFineTuner


def _images(n_classes: int, per_class: int, seed: int) -> ImageClassDataset:
    g = torch.Generator().manual_seed(seed)
    return ImageClassDataset(
        torch.randint(0, 256, (n_classes * per_class, 1, 28, 28), generator=g, dtype=torch.uint8),
        torch.arange(n_classes).repeat_interleave(per_class),
        tuple(f"c{i}" for i in range(n_classes)), "fake")


pytestmark = pytest.mark.usefixtures("torch_seed_0")  # module initialisation


def test_the_two_experiments_are_registered_with_the_metric_test_protocol():
    proto = CONFIGS["protonet-omniglot-1shot"]
    for name, method in (("baseline-omniglot", "baseline"), ("baselinepp-omniglot", "baseline++")):
        cfg = CONFIGS[name]
        assert isinstance(cfg, BaselineExperiment) and cfg.method == method
        assert (cfg.test_n_way, cfg.test_n_shot, cfg.test_n_query, cfg.test_episodes) == (
            proto.test_n_way, proto.test_n_shot, proto.test_n_query, proto.test_episodes)
        assert cfg.extra_tests == ((5, 5),)


def test_the_learner_has_a_head_over_every_training_class():
    plain, cosine = (build_learner(CONFIGS[n])
                     for n in ("baseline-omniglot", "baselinepp-omniglot"))
    assert isinstance(plain, SupervisedLearner)
    assert plain.model[1].out_features == OMNIGLOT_TRAIN_CLASSES
    assert isinstance(cosine.model[1], CosineClassifier)
    assert cosine.model[1].scale == 10.0  # Chen et al.: 10 above 200 classes
    tuner = episode_learner(CONFIGS["baselinepp-omniglot"], cosine)
    assert isinstance(tuner, SupportSetFineTuner) and tuner.head_kind == "cosine"
    assert tuner.encoder is cosine.model[0] and tuner.scale == 2.0  # 5-way episodes


@pytest.mark.parametrize(("values", "message"), [
    ({"finetune_steps": 0}, "finetune_steps"), ({"finetune_lr": 0.0}, "finetune_lr"),
    ({"extra_tests": ((5,),)}, "extra_tests"), ({"dataset": "sinusoid"}, "dataset")])
def test_bad_settings_are_refused(values, message):
    with pytest.raises(ValueError, match=message):
        BaselineExperiment(name="b", method="baseline", **values)


def test_training_source_draws_labelled_batches_and_checks_the_class_count():
    cfg = CONFIGS["baseline-omniglot"]
    learner = build_learner(cfg)
    data = {"train": _images(OMNIGLOT_TRAIN_CLASSES, 1, 0), "val": _images(5, 3, 1)}
    source, validate = training_source(cfg, data, learner, 0)
    batch = source.sample_batch(8)
    assert isinstance(batch, LabelledBatch) and batch.x.shape == (8, 1, 28, 28)
    assert batch.x.dtype == torch.float32 and 0 <= batch.x.min() and batch.x.max() <= 1
    assert validate is not None
    with pytest.raises(ValueError, match="classes"):
        training_source(cfg, {"train": _images(10, 1, 0), "val": data["val"]}, learner, 0)


def test_evaluate_scores_the_fixed_test_episodes_and_the_extra_shape():
    cfg = replace(CONFIGS["baseline-omniglot"], test_episodes=2, finetune_steps=3)
    learner = build_learner(cfg).eval()
    result = evaluate(cfg, learner, {"test": _images(6, 20, 2)}, progress=False,
                      device=torch.device("cpu"))
    assert result["test"]["n_episodes"] == 2 and 0 <= result["test"]["mean"] <= 1
    assert set(result["extra_tests"]) == {"5-way 5-shot"}
    assert result["protocol"]["n_query"] == 15
    assert "linear head" in result["protocol"]["fine_tuning"]


def test_the_runner_uses_a_familys_own_training_source(monkeypatch, tmp_path):
    """A family that trains on something other than episodes says so at registration."""
    from tests.experiments.test_registry import SINE, ToyExperiment, _toy_evaluate

    monkeypatch.setattr(registry, "_METHODS", dict(registry._METHODS))
    calls = []

    def source(cfg, data, learner, seed):
        calls.append(seed)
        return data["tasks"].sampler(n_support=cfg.n_shot, n_query=cfg.n_query, seed=seed), None

    register_method("toy", config=ToyExperiment,
                    build=lambda cfg, seed: JointTraining(MLP(1, (cfg.width,), 1)),
                    evaluate=_toy_evaluate, optimizer=adam_optimizer, training_source=source)
    cfg = ToyExperiment(name="toy-source", method="toy", width=4, iterations=2,
                        meta_batch_size=2, checkpoint_every=2, test_episodes=2, **SINE)
    run_experiment(cfg, seed=3, results_dir=tmp_path / "r", runs_dir=tmp_path / "c",
                   progress=False, device="cpu")
    assert calls == [3]
