"""The two small interfaces a multi-task training step calls.

* A **loss weighting** (equal, uncertainty, DWA) turns the task losses into one scalar loss:
  ``combine(losses) -> loss``; the usual single backward follows.
* A **gradient method** (PCGrad, MGDA) receives each task's gradient of the shared parameters
  and returns the update direction for them, plus the weights of the task losses for the
  task-specific parameters: ``combine(grads, losses) -> CombinedGradient``.

GradNorm is neither: it needs gradient norms at one shared layer and updates its own
weights; see :class:`companion.multitask.GradNorm`.

Chapter: Multi-task learning (loss weighting and gradient methods).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from torch import Tensor

from companion.multitask.gradients import Gradients, TaskGradients

__all__ = ["CombinedGradient", "GradientMethod", "LossWeighting"]


@runtime_checkable
class LossWeighting(Protocol):
    """``combine(losses) -> scalar loss`` from a dict task name -> scalar loss."""

    def combine(self, losses: Mapping[str, Tensor]) -> Tensor: ...


@dataclass(frozen=True, eq=False)
class CombinedGradient:
    """What a gradient method returns.

    Args:
        shared: parameter name -> update direction for the shared parameters.
        loss_weights: task name -> weight of that task's loss for the task-specific
            parameters (heads), which only their own task reaches.
    """

    shared: Gradients
    loss_weights: dict[str, Tensor]


@runtime_checkable
class GradientMethod(Protocol):
    """``combine(grads, losses) -> CombinedGradient`` from per-task gradients."""

    def combine(self, grads: TaskGradients, losses: Mapping[str, Tensor]) -> CombinedGradient: ...
