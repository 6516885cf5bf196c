"""The one train/evaluate loop every chapter uses (the names the chapters import).

The implementation lives in :mod:`companion.engine` (loop, evaluation, checkpoints,
processes) and :mod:`companion.metrics` (accuracy, errors, confidence intervals); this
module keeps the short import path ``from companion.training import fit, evaluate``.

Chapter: Concepts (first experiment); used by every later chapter.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from companion.data.episode import Episode, EpisodeBatch
from companion.engine import History, evaluate, evaluate_all, fit
from companion.metrics import AccuracyCI, MeanCI, accuracy, mean_ci95

__all__ = [
    "AccuracyCI",
    "FewShotLearner",
    "History",
    "MeanCI",
    "TaskSource",
    "accuracy",
    "evaluate",
    "evaluate_all",
    "fit",
    "mean_ci95",
]


@runtime_checkable
class FewShotLearner(Protocol):
    """What :func:`fit` and :func:`evaluate` need from a few-shot method (ProtoNet, MAML, ...)."""

    def meta_loss(self, batch: EpisodeBatch) -> tuple[Tensor, dict[str, Tensor]]:
        """Differentiable mean query loss over a batch of tasks, plus metrics to log."""
        ...

    def predict(self, episode: Episode) -> Tensor:
        """``[n_query, n_way]`` class scores for the query set, after using the support set."""
        ...


class TaskSource(Protocol):
    """Anything that draws task batches from its own ``torch.Generator`` (e.g. EpisodeSampler)."""

    generator: torch.Generator

    def sample_batch(self, n_tasks: int) -> EpisodeBatch: ...
