"""Build the multi-task learner a configured method needs.

Chapter: Multi-task learning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from torch import nn

from companion.multitask.config import GRADIENT_METHODS, MultiTaskConfig
from companion.multitask.gradient_learner import GradientMultiTaskLearner
from companion.multitask.learner import MultiTaskLearner

__all__ = ["multitask_learner"]


def multitask_learner(model: nn.Module, kinds: Mapping[str, str] | None = None,
                      config: MultiTaskConfig | None = None,
                      **overrides: Any) -> MultiTaskLearner:
    """A :class:`MultiTaskLearner` for loss weighting (``"equal"``, ``"uncertainty"``,
    ``"dwa"``) or a :class:`GradientMultiTaskLearner` for the methods that need per-task
    gradients (``"gradnorm"``, ``"pcgrad"``, ``"mgda"``, ``"mgda_ub"``).

    Args:
        model: a multi-task architecture (e.g. ``HardSharing``).
        kinds: task name -> ``"classification"`` or ``"regression"`` (default all
            classification).
        config: a :class:`MultiTaskConfig`; keyword overrides are applied on top.

    Example:
        >>> learner = multitask_learner(HardSharing(trunk, heads), method="pcgrad")
        >>> loss, metrics = learner.training_step(batch, optimizer)
    """
    cfg = replace(config or MultiTaskConfig(), **overrides)
    cls = GradientMultiTaskLearner if cfg.method in GRADIENT_METHODS else MultiTaskLearner
    return cls(model, kinds, cfg)
