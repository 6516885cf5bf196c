"""Black-box (model-based) learners on Omniglot as named experiments: an LSTM, a
memory-augmented network and an in-context Transformer that read the labelled support set.

They are trained and tested on the protocol of the MAML and metric results (Omniglot 5-way
1-shot, 15 queries per class, the same 600 fixed test episodes), with one difference the
sequence models need: the support set is read in a random order (``shuffle``), both while
training and at test time. At test time the test episodes are exactly those of the other
methods; only the order of each support set is permuted, by a generator of its own
(:class:`companion.experiments.sources.ShuffledSupport`). The record adds ``shot_sweep``:
the same trained model tested with more shots than it was trained on (no retraining).

Chapter: Model-based meta-learning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from companion.experiments.base import AdamTrained, check_positive_int
from companion.experiments.protocol import fixed_test_sampler, omniglot_protocol
from companion.experiments.registry import register_experiments, register_method
from companion.experiments.sources import ShuffledSupport, adam_optimizer
from companion.meta.blackbox import RecurrentLearner
from companion.meta.in_context import InContextLearner
from companion.meta.mann import MemoryAugmentedLearner
from companion.meta.sequence import SequenceLearner
from companion.models import Conv4
from companion.training import evaluate as evaluate_episodes

__all__ = ["SHUFFLE_SEED", "BlackBoxExperiment"]

SHUFFLE_SEED = 7  # the generator that permutes each fixed test episode's support set


@dataclass(frozen=True, kw_only=True)
class BlackBoxExperiment(AdamTrained):
    """Settings of a black-box learner on Omniglot.

    ``max_shot`` sizes the longest support sequence the model accepts
    (``n_way * max_shot``); ``shot_sweep`` lists the test shots beyond the training one.
    """

    METHODS: ClassVar[tuple[str, ...]] = ("lstm", "mann", "transformer")
    DATASETS: ClassVar[tuple[str, ...]] = ("omniglot",)

    method: Literal["lstm", "mann", "transformer"]
    shuffle: bool = True  # support (and query) sets in a random order while training
    hidden_size: int = 128  # LSTM / controller units, or the Transformer's d_model
    max_shot: int = 5  # the model accepts up to n_way * max_shot support items (Omniglot
    # has 20 images a class: 5 shots leave 15 queries)
    shot_sweep: tuple[int, ...] = ()  # more test shots, same model (no retraining)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int("hidden_size", self.hidden_size)
        check_positive_int("max_shot", self.max_shot)
        if not isinstance(self.shuffle, bool):
            raise ValueError(f"shuffle must be a bool, got {self.shuffle!r}")
        if self.test_n_way != self.n_way:
            raise ValueError("the output layer has n_way classes: test_n_way must equal n_way, "
                             f"got {self.test_n_way} and {self.n_way}")
        for k in (self.n_shot, self.test_n_shot, *self.shot_sweep):
            check_positive_int("shots", k)
            if k > self.max_shot:
                raise ValueError(f"a shot of {k} exceeds max_shot={self.max_shot}")


def build(cfg: BlackBoxExperiment, seed: int) -> nn.Module:
    """The learner on a Conv-4 encoder with BatchNorm running statistics (as ProtoNet's):
    in eval mode every query is embedded on its own."""
    encoder = Conv4(norm="batch")
    sizes: dict[str, Any] = {"embedding_dim": encoder.embedding_dim, "max_ways": cfg.n_way,
                             "max_support": cfg.n_way * cfg.max_shot}
    if cfg.method == "transformer":
        return InContextLearner(encoder, d_model=cfg.hidden_size, n_heads=4, n_layers=2,
                                **sizes)
    if cfg.method == "mann":
        return MemoryAugmentedLearner(encoder, hidden_size=cfg.hidden_size, **sizes)
    return RecurrentLearner(encoder, hidden_size=cfg.hidden_size, **sizes)


def shuffled_test_sampler(cfg: BlackBoxExperiment, data: dict[str, Any],
                          n_shot: int | None = None) -> ShuffledSupport:
    """The fixed test episodes of every method, each support set in a seeded random order."""
    return ShuffledSupport(fixed_test_sampler(cfg, data, n_shot=n_shot), seed=SHUFFLE_SEED)


def evaluate(cfg: BlackBoxExperiment, learner: nn.Module, data: dict[str, Any], *,
             progress: bool, device: torch.device) -> dict[str, Any]:
    """Eval mode (BatchNorm running statistics: each query on its own), then the shot sweep."""
    if not isinstance(learner, SequenceLearner):
        raise ValueError(f"learner must be a SequenceLearner, got {type(learner).__name__}")
    accuracy = evaluate_episodes(learner, shuffled_test_sampler(cfg, data),
                                 n_episodes=cfg.test_episodes, progress=progress)
    sweep = {str(k): evaluate_episodes(learner, shuffled_test_sampler(cfg, data, k),
                                       n_episodes=cfg.test_episodes, progress=progress).to_dict()
             for k in cfg.shot_sweep}
    return {"test": accuracy.to_dict(), "shot_sweep": sweep, "protocol": {
        **omniglot_protocol(cfg), "shot_sweep": list(cfg.shot_sweep),
        "support_order": f"the fixed test episodes, support permuted (seed {SHUFFLE_SEED})",
        "test": "each query on its own (BatchNorm running statistics; queries never see "
                "each other or any query label)"}}


register_method(*BlackBoxExperiment.METHODS, config=BlackBoxExperiment, build=build,
                evaluate=evaluate, optimizer=adam_optimizer)


def _named(method: Literal["lstm", "mann", "transformer"]) -> BlackBoxExperiment:
    """5-way 1-shot episodes with 3 queries per class, 4 tasks a step, Adam at 1e-3: about
    8 CPU-minutes on one thread. Validated on 200 episodes every 500 steps."""
    return BlackBoxExperiment(
        name=f"{method}-omniglot-5w1s", method=method, n_way=5, n_shot=1, n_query=3,
        meta_batch_size=4, iterations=3000, outer_lr=1e-3, val_every=500, val_episodes=200,
        checkpoint_every=250, shot_sweep=(2, 3, 5))


register_experiments(*(_named(m) for m in ("lstm", "mann", "transformer")))
