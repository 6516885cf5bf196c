"""Few-shot learning by transfer (Baseline and Baseline++) as named experiments.

Pre-training is ordinary classification over every training class (mini-batches of images,
not episodes); testing fine-tunes a new head on each test episode's support set with the
encoder frozen. The test episodes, their shapes and the confidence intervals are exactly
those of the metric and MAML experiments (:func:`fixed_test_sampler`: the Vinyals test split,
15 queries per class, 600 episodes, seed ``TEST_SEED``), so the numbers compare one to one.

Chapter: Transfer learning (few-shot by transfer).
Reference: :cite:t:`chen2019closer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from companion.data import BatchSampler, EpisodeSampler
from companion.experiments.base import AdamTrained, check_extra_tests, check_positive_int
from companion.experiments.protocol import (
    fixed_and_extra_tests,
    omniglot_protocol,
)
from companion.experiments.registry import register_experiments, register_method
from companion.experiments.sources import VAL_SEED, adam_optimizer
from companion.models import Conv4
from companion.supervised import SupervisedLearner
from companion.training import evaluate as evaluate_episodes
from companion.transfer.baseline import baseline, baseline_classifier
from companion.transfer.finetune import SupportSetFineTuner

__all__ = ["OMNIGLOT_TRAIN_CLASSES", "BaselineExperiment", "episode_learner"]

OMNIGLOT_TRAIN_CLASSES = 4112  # the Vinyals training split: 1028 characters x 4 rotations
EMBEDDING_DIM = 64  # Conv-4 on 28 x 28 images


@dataclass(frozen=True, kw_only=True)
class BaselineExperiment(AdamTrained):
    """Baseline / Baseline++ settings.

    ``meta_batch_size`` is the number of *images* per pre-training step and ``iterations``
    the number of steps; ``n_way``, ``n_shot`` and ``n_query`` are unused (no training
    episodes). ``finetune_steps`` full-batch Adam steps at ``finetune_lr`` train each test
    episode's head; ``extra_tests`` lists more (n_way, n_shot) test shapes.
    """

    METHODS: ClassVar[tuple[str, ...]] = ("baseline", "baseline++")
    DATASETS: ClassVar[tuple[str, ...]] = ("omniglot",)

    method: Literal["baseline", "baseline++"]
    finetune_steps: int = 100  # Adam steps on each test episode's support set
    finetune_lr: float = 1e-2
    extra_tests: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int("finetune_steps", self.finetune_steps)
        if not isinstance(self.finetune_lr, (int, float)) or not self.finetune_lr > 0:
            raise ValueError(f"finetune_lr must be > 0, got {self.finetune_lr!r}")
        check_extra_tests(self.extra_tests)


def build(cfg: BaselineExperiment, seed: int) -> nn.Module:
    """A Conv-4 (BatchNorm running statistics) with a linear (Baseline) or cosine
    (Baseline++) head over the 4112 training classes, as a :class:`SupervisedLearner`.

    ``learner.model[0]`` is the encoder the test episodes reuse."""
    return SupervisedLearner(baseline_classifier(
        Conv4(norm="batch"), EMBEDDING_DIM, OMNIGLOT_TRAIN_CLASSES, variant=cfg.method))


def episode_learner(cfg: BaselineExperiment, learner: nn.Module) -> SupportSetFineTuner:
    """The test-time learner: a new head per episode on the frozen pre-trained encoder."""
    encoder: nn.Module = learner.model[0]  # type: ignore[index,assignment]
    return baseline(encoder, EMBEDDING_DIM, variant=cfg.method, steps=cfg.finetune_steps,
                    lr=cfg.finetune_lr)


def training_source(cfg: BaselineExperiment, data: dict[str, Any], learner: nn.Module,
                    seed: int) -> tuple[BatchSampler, Any]:
    """Random mini-batches of the training classes; validation: Baseline episodes of the
    validation classes (the test shape, ``VAL_SEED``)."""
    if data["train"].num_classes != OMNIGLOT_TRAIN_CLASSES:
        raise ValueError(f"the training split has {data['train'].num_classes} classes, the "
                         f"head {OMNIGLOT_TRAIN_CLASSES}")

    def validate() -> Any:
        val = EpisodeSampler(data["val"], n_way=cfg.test_n_way, n_shot=cfg.test_n_shot,
                             n_query=cfg.test_n_query, seed=VAL_SEED)
        return evaluate_episodes(episode_learner(cfg, learner), val,
                                 n_episodes=cfg.val_episodes, progress=False)

    return BatchSampler(data["train"], seed=seed), (validate if cfg.val_every else None)


def evaluate(cfg: BaselineExperiment, learner: nn.Module, data: dict[str, Any], *,
             progress: bool, device: torch.device) -> dict[str, Any]:
    """The fixed test episodes of every Omniglot experiment, each query on its own (the
    encoder's BatchNorm uses its running statistics), then the extra shapes."""
    tuner = episode_learner(cfg, learner)
    accuracy, extra = fixed_and_extra_tests(cfg, tuner, data, progress=progress)
    return {"test": accuracy.to_dict(), "extra_tests": extra, "protocol": {
        **omniglot_protocol(cfg),
        "pre_training": f"{OMNIGLOT_TRAIN_CLASSES}-way classification of the training split, "
                        f"{cfg.meta_batch_size} images per step",
        "fine_tuning": f"a new {'cosine' if cfg.method == 'baseline++' else 'linear'} head "
                       f"per episode, {cfg.finetune_steps} full-batch Adam steps at "
                       f"{cfg.finetune_lr}, encoder frozen",
        "test": "each query on its own (BatchNorm running statistics)"}}


register_method(*BaselineExperiment.METHODS, config=BaselineExperiment, build=build,
                evaluate=evaluate, optimizer=adam_optimizer, training_source=training_source)


def _named(method: Literal["baseline", "baseline++"]) -> BaselineExperiment:
    """2000 steps of 128 images (about three passes over the 82,240 training images); tested
    5-way 1-shot and 5-way 5-shot on the metric chapter's episodes."""
    name = "baselinepp" if method == "baseline++" else "baseline"
    return BaselineExperiment(
        name=f"{name}-omniglot", method=method, meta_batch_size=128, iterations=2000,
        val_every=1000, checkpoint_every=250, extra_tests=((5, 5),))


register_experiments(_named("baseline"), _named("baseline++"))
