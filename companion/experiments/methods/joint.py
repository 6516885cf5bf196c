"""Joint training (the "pretrained" baseline of the sinusoid experiments), fine-tuned at
test time with the best step size of a small grid.

Chapter: MAML (sinusoid regression); Reptile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from companion.experiments.base import AdamTrained, check_positive_int
from companion.experiments.protocol import evaluate_regression, regression_batch
from companion.experiments.registry import register_experiments, register_method
from companion.experiments.sources import VAL_SEED, adam_optimizer
from companion.meta.joint import JointTraining
from companion.meta.maml import MAML, adaptation_curve
from companion.models import MLP

__all__ = ["JOINT_LR_GRID", "JointExperiment"]

JOINT_LR_GRID = (0.001, 0.003, 0.01, 0.03, 0.1)


@dataclass(frozen=True, kw_only=True)
class JointExperiment(AdamTrained):
    """Joint training on pooled sinusoid tasks; fine-tuned for ``eval_inner_steps`` SGD
    steps at test time."""

    METHODS: ClassVar[tuple[str, ...]] = ("joint",)
    DATASETS: ClassVar[tuple[str, ...]] = ("sinusoid",)

    method: Literal["joint"]
    eval_inner_steps: int = 3  # fine-tuning steps at test time

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int("eval_inner_steps", self.eval_inner_steps)


def build(cfg: JointExperiment, seed: int) -> nn.Module:
    """One MLP 1-40-40-1 fitted to the pooled points of all tasks."""
    return JointTraining(MLP(1, (40, 40), 1), task="regression")


def evaluate(cfg: JointExperiment, learner: nn.Module, data: dict[str, Any], *,
             progress: bool, device: torch.device) -> dict[str, Any]:
    """Fine-tuned with the best rate of a small grid, chosen on validation tasks (the MAML
    paper's "automatically tuned step size"); a rate that diverges on any task loses."""
    model: nn.Module = learner.model  # type: ignore[assignment]

    def adaptable(k: int) -> tuple[MAML, float]:
        val = regression_batch(data["tasks"], 100, k, VAL_SEED + k).to(device)
        scores = {lr: adaptation_curve(MAML(model, task="regression", inner_lr=lr), val,
                                       cfg.eval_inner_steps)[:, -1]
                  .nan_to_num(nan=torch.inf, posinf=torch.inf).mean().item()
                  for lr in JOINT_LR_GRID}
        best = min(scores, key=lambda lr: scores[lr])
        return MAML(model, task="regression", inner_lr=best), best

    return evaluate_regression(cfg, data["tasks"], device, adaptable)


register_method("joint", config=JointExperiment, build=build, evaluate=evaluate,
                optimizer=adam_optimizer)

register_experiments(
    JointExperiment(name="joint-sinusoid", method="joint", dataset="sinusoid", n_shot=10,
                    n_query=10, test_shots=(5, 10), meta_batch_size=25, iterations=70000,
                    eval_inner_steps=10, val_every=0, test_episodes=600,
                    checkpoint_every=1000, n_way=1, test_n_way=1),
)
