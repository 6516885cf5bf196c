"""MAML and its variants (first-order MAML, ANIL, Meta-SGD) as named experiments.

Chapter: MAML.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, cast

import torch
from torch import nn

from companion.experiments.base import AdamTrained, check_positive_int
from companion.experiments.protocol import evaluate_adaptation, evaluate_regression
from companion.experiments.registry import register_experiments, register_method
from companion.experiments.sources import adam_optimizer
from companion.meta.maml import MAML
from companion.models import MLP, Conv4

__all__ = ["MAMLExperiment"]


@dataclass(frozen=True, kw_only=True)
class MAMLExperiment(AdamTrained):
    """MAML-family settings (defaults: MAML, Omniglot 5-way 1-shot, the paper's)."""

    METHODS: ClassVar[tuple[str, ...]] = ("maml", "fomaml", "anil", "metasgd")

    method: Literal["maml", "fomaml", "anil", "metasgd"]
    inner_lr: float = 0.4  # alpha (Meta-SGD: its initial value, then learnt)
    inner_steps: int = 1  # inner steps while meta-training
    eval_inner_steps: int = 3  # inner steps at test time
    # tasks per backward pass while meta-training (None: the whole meta-batch at once); the
    # same meta-gradient with one chunk's graph alive at a time: less memory, a little slower
    backward_chunk: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.inner_lr, (int, float)) or not self.inner_lr > 0:
            raise ValueError(f"inner_lr must be > 0, got {self.inner_lr!r}")
        check_positive_int("inner_steps", self.inner_steps)
        check_positive_int("eval_inner_steps", self.eval_inner_steps)
        if self.backward_chunk is not None:
            check_positive_int("backward_chunk", self.backward_chunk)
            if self.backward_chunk >= self.meta_batch_size:
                raise ValueError(f"backward_chunk must be below meta_batch_size "
                                 f"({self.meta_batch_size}) to change anything, got "
                                 f"{self.backward_chunk}; None back-propagates the whole batch")
        if self.dataset == "omniglot" and self.test_n_way != self.n_way:
            raise ValueError("the head has n_way outputs: test_n_way must equal n_way, got "
                             f"{self.test_n_way} and {self.n_way}")


def build(cfg: MAMLExperiment, seed: int) -> nn.Module:
    """MAML (or its variant) around an MLP 1-40-40-1 (sinusoids) or a Conv-4 with an
    ``n_way`` head and batch statistics (Omniglot)."""
    model: nn.Module
    if cfg.dataset == "sinusoid":
        model, task = MLP(1, (40, 40), 1), "regression"
    else:
        model, task = Conv4(n_classes=cfg.n_way, norm="batch_stats"), "classification"
    return MAML(model, task=task, inner_lr=cfg.inner_lr, inner_steps=cfg.inner_steps,
                eval_inner_steps=cfg.eval_inner_steps, first_order=cfg.method == "fomaml",
                adapt="head" if cfg.method == "anil" else "all",
                learn_inner_lr=cfg.method == "metasgd", backward_chunk=cfg.backward_chunk)


def evaluate(cfg: MAMLExperiment, learner: nn.Module, data: dict[str, Any], *, progress: bool,
             device: torch.device) -> dict[str, Any]:
    """Regression curves (sinusoids) or accuracy with and without transduction (Omniglot)."""
    if cfg.dataset == "sinusoid":  # MAML adapts with its own inner rate
        maml = cast(MAML, learner)
        return evaluate_regression(cfg, data["tasks"], device, lambda k: (maml, cfg.inner_lr))
    return evaluate_adaptation(cfg, data, learner, progress)


register_method(*MAMLExperiment.METHODS, config=MAMLExperiment, build=build, evaluate=evaluate,
                optimizer=adam_optimizer)

# CPU budgets: the paper trains 60,000 outer steps (5-way); these runs take from 20 minutes
# (5-way) to about 10 hours (20-way 5-shot) on two CPU cores. Pass --iterations to the
# command for the full schedule on a GPU.
register_experiments(
    MAMLExperiment(name="maml-omniglot-5w1s", method="maml"),
    MAMLExperiment(name="fomaml-omniglot-5w1s", method="fomaml"),
    MAMLExperiment(name="anil-omniglot-5w1s", method="anil"),
    MAMLExperiment(name="metasgd-omniglot-5w1s", method="metasgd"),
    MAMLExperiment(name="maml-omniglot-5w5s", method="maml", n_shot=5, n_query=5,
                   test_n_shot=5, iterations=1500),
    MAMLExperiment(name="maml-omniglot-20w1s", method="maml", n_way=20, test_n_way=20,
                   meta_batch_size=16, inner_lr=0.1, inner_steps=5, eval_inner_steps=5,
                   test_n_query=5, iterations=1500),
    # a backward per task: 1.9 GiB instead of 16.4 GiB at 0.93 times the speed on two CPU
    # threads (benchmarks/results/maml_levers_cpu_20w5s.json), so it fits a laptop
    MAMLExperiment(name="maml-omniglot-20w5s", method="maml", n_way=20, test_n_way=20,
                   n_shot=5, test_n_shot=5, n_query=5, meta_batch_size=16, inner_lr=0.1,
                   inner_steps=5, eval_inner_steps=5, test_n_query=5, iterations=1500,
                   backward_chunk=1),
    MAMLExperiment(name="fomaml-omniglot-5w5s", method="fomaml", n_shot=5, n_query=5,
                   test_n_shot=5, iterations=1500),
    # the 5w1s run for longer, toward the paper's 60,000 steps (about 3 h on two CPU cores)
    MAMLExperiment(name="maml-omniglot-5w1s-long", method="maml", iterations=10000),
    MAMLExperiment(name="maml-sinusoid", method="maml", dataset="sinusoid", n_shot=10,
                   n_query=10, test_shots=(5, 10), meta_batch_size=25, iterations=70000,
                   inner_lr=0.01, eval_inner_steps=10, val_every=0, test_episodes=600,
                   checkpoint_every=1000, n_way=1, test_n_way=1),
)
