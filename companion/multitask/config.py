"""The configuration of a multi-task learner: which method, and its hyperparameters.

Chapter: Multi-task learning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from companion._checks import check_positive_float, check_positive_int, check_seed
from companion.multitask.mgda import Normalization

__all__ = ["GRADIENT_METHODS", "LOSS_METHODS", "Method", "MultiTaskConfig"]

Method = Literal["equal", "uncertainty", "dwa", "gradnorm", "pcgrad", "mgda", "mgda_ub"]
LOSS_METHODS: tuple[str, ...] = ("equal", "uncertainty", "dwa")  # one weighted loss
GRADIENT_METHODS: tuple[str, ...] = ("gradnorm", "pcgrad", "mgda", "mgda_ub")  # own backward


@dataclass(frozen=True)
class MultiTaskConfig:
    """How the task losses (or gradients) are combined.

    ``method``: ``"equal"`` (sum of losses), ``"uncertainty"`` (Kendall et al.), ``"dwa"``
    (Liu et al.), ``"gradnorm"`` (Chen et al.), ``"pcgrad"`` (Yu et al.), ``"mgda"`` (min-norm
    over the shared parameters' gradients) or ``"mgda_ub"`` (over the shared representation's
    gradients; hard sharing only).
    """

    method: Method = "equal"
    coupling: float = 0.0  # weight of L2CoupledTowers.coupling_penalty() in the loss (Duong)
    dwa_temperature: float = 2.0  # T of Dynamic Weight Average
    dwa_period: int = 1  # training steps per DWA "epoch"
    gradnorm_alpha: float = 1.5  # asymmetry of GradNorm
    gradnorm_layer: str | None = None  # name prefix of the shared layer; None: last shared weight
    mgda_normalization: Normalization = "none"  # "none", "l2", "loss" or "loss+"
    pcgrad_seed: int = 0  # seeds PCGrad's random task order

    def __post_init__(self) -> None:
        if self.method not in get_args(Method):
            raise ValueError(f"method must be one of {get_args(Method)}, got {self.method!r}")
        if not isinstance(self.coupling, (int, float)) or not (
                math.isfinite(self.coupling) and self.coupling >= 0):
            raise ValueError(f"coupling must be a finite number >= 0, got {self.coupling!r}")
        check_positive_float("dwa_temperature", self.dwa_temperature)
        check_positive_int("dwa_period", self.dwa_period)
        if not isinstance(self.gradnorm_alpha, (int, float)) or not (
                math.isfinite(self.gradnorm_alpha) and self.gradnorm_alpha >= 0):
            raise ValueError(f"gradnorm_alpha must be a finite number >= 0, got "
                             f"{self.gradnorm_alpha!r}")
        if self.mgda_normalization not in get_args(Normalization):
            raise ValueError(f"mgda_normalization must be one of {get_args(Normalization)}, "
                             f"got {self.mgda_normalization!r}")
        check_seed(self.pcgrad_seed)
