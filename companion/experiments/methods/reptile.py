"""Reptile as named experiments.

Chapter: Reptile.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal, cast

import torch
from torch import nn

from companion.experiments.base import ExperimentConfig
from companion.experiments.protocol import evaluate_adaptation, evaluate_regression
from companion.experiments.registry import register_experiments, register_method
from companion.meta.maml import MAML
from companion.meta.reptile import Reptile, ReptileConfig
from companion.models import MLP, Conv4

__all__ = ["ReptileExperiment"]


@dataclass(frozen=True, kw_only=True)
class ReptileExperiment(ExperimentConfig):
    """Reptile settings; ``outer_lr`` is epsilon, annealed linearly to ``final_outer_lr``
    (SGD on the Reptile direction, no other schedule)."""

    METHODS: ClassVar[tuple[str, ...]] = ("reptile",)

    method: Literal["reptile"]
    inner_lr: float = 0.4  # step size of the inner optimiser
    inner_steps: int = 1  # k: inner steps per task while meta-training
    inner_batch_size: int | None = None  # examples per inner step (None: the whole set)
    inner_optimizer: Literal["sgd", "adam"] = "sgd"  # "adam": the paper's Omniglot loop
    final_outer_lr: float = 0.0  # epsilon is annealed linearly to this
    eval_inner_steps: int = 3  # inner steps at test time
    eval_inner_batch_size: int | None = None  # examples per test-time step (None: all)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.reptile_config()  # Reptile's own checks (epsilon in (0, 1], ...)
        if self.dataset == "omniglot" and self.test_n_way != self.n_way:
            raise ValueError("the head has n_way outputs: test_n_way must equal n_way, got "
                             f"{self.test_n_way} and {self.n_way}")

    def reptile_config(self) -> ReptileConfig:
        """The algorithm's own configuration (its loss follows the data set)."""
        return ReptileConfig(
            inner_lr=self.inner_lr, inner_steps=self.inner_steps,
            inner_batch_size=self.inner_batch_size, inner_optimizer=self.inner_optimizer,
            outer_lr=self.outer_lr, final_outer_lr=self.final_outer_lr,
            eval_inner_steps=self.eval_inner_steps,
            eval_inner_batch_size=self.eval_inner_batch_size,
            task="regression" if self.dataset == "sinusoid" else "classification")


def build(cfg: ReptileExperiment, seed: int) -> nn.Module:
    """Reptile around an MLP 1-40-40-1 (sinusoids) or a Conv-4 with an ``n_way`` head;
    ``seed`` drives its inner minibatches."""
    model = (MLP(1, (40, 40), 1) if cfg.dataset == "sinusoid"
             else Conv4(n_classes=cfg.n_way, norm="batch_stats"))
    return Reptile(model, cfg.reptile_config(), seed=seed)


def evaluate(cfg: ReptileExperiment, learner: nn.Module, data: dict[str, Any], *,
             progress: bool, device: torch.device) -> dict[str, Any]:
    """Regression curves (sinusoids) or accuracy with and without transduction (Omniglot)."""
    if cfg.dataset == "sinusoid":  # plain SGD steps of its inner step size
        model = cast(Reptile, learner).model
        adapter = MAML(model, task="regression", inner_lr=cfg.inner_lr)
        return evaluate_regression(cfg, data["tasks"], device, lambda k: (adapter, cfg.inner_lr))
    return evaluate_adaptation(cfg, data, learner, progress)


def optimizer(cfg: ReptileExperiment, learner: nn.Module) -> tuple[torch.optim.Optimizer, Any]:
    """SGD at epsilon on the Reptile direction, annealed."""
    return cast(Reptile, learner).outer_optimizer(cfg.iterations)


register_method("reptile", config=ReptileExperiment, build=build, evaluate=evaluate,
                optimizer=optimizer)

# The paper's Omniglot settings (its Table 3): 10 examples per class per task (here 5
# support + 5 query, all used for training), 5 inner Adam steps (beta1 = 0) on minibatches of
# 10, epsilon = 1 annealed to 0, meta-batch 5, 50 steps at test time.
_OMNIGLOT = ReptileExperiment(
    name="reptile-omniglot-5w1s", method="reptile", n_shot=5, n_query=5, meta_batch_size=5,
    iterations=5000, inner_lr=1e-3, inner_steps=5, inner_batch_size=10,
    inner_optimizer="adam", outer_lr=1.0, eval_inner_steps=50, eval_inner_batch_size=5,
    val_every=1000, val_episodes=100, checkpoint_every=200)
register_experiments(
    _OMNIGLOT,
    replace(_OMNIGLOT, name="reptile-omniglot-5w5s", test_n_shot=5, eval_inner_batch_size=15),
    # Sinusoids: 50 points per task, 5 inner SGD steps on minibatches of 10 (one pass), inner
    # step 0.02, epsilon 0.1 annealed to 0; tested with SGD steps of 0.02.
    ReptileExperiment(name="reptile-sinusoid", method="reptile", dataset="sinusoid",
                      n_shot=10, n_query=40, test_shots=(5, 10), meta_batch_size=1,
                      iterations=30000, inner_lr=0.02, inner_steps=5, inner_batch_size=10,
                      outer_lr=0.1, eval_inner_steps=32, val_every=0, test_episodes=600,
                      checkpoint_every=1000, n_way=1, test_n_way=1),
)
