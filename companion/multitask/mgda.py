"""MGDA (Sener & Koltun, NeurIPS 2018): multi-task learning as multi-objective optimisation.

Each step moves the shared parameters along the min-norm element of the convex hull of the
task gradients, ``d = sum_t alpha_t g_t`` (see :mod:`companion.multitask.min_norm`). If
``d = 0`` the point is Pareto-stationary; otherwise ``-d`` decreases every task's loss.

**MGDA-UB** (the paper's upper bound) uses the gradients w.r.t. the shared representation
``z = encode(x)`` instead of the shared parameters: one backward through the heads per task,
not through the trunk. The learner implements it (``method="mgda_ub"``) with
:meth:`MGDA.task_weights` on those representation gradients.

Gradients can be normalised per task before the solver (the paper's code offers the same):
``"l2"`` by ``||g_t||``, ``"loss"`` by ``L_t``, ``"loss+"`` by ``L_t ||g_t||``. The direction
is then ``sum_t alpha_t g_t / s_t``, i.e. loss weights ``alpha_t / s_t``.

Chapter: Multi-task learning (gradient methods). Reference: :cite:t:`sener2018multi`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

import torch
from torch import Tensor

from companion.multitask._checks import check_same_tasks, check_task_losses
from companion.multitask.gradients import TaskGradients, combine_gradients, gradient_gram
from companion.multitask.method import CombinedGradient
from companion.multitask.min_norm import min_norm_weights

__all__ = ["MGDA", "Normalization"]

Normalization = Literal["none", "l2", "loss", "loss+"]


class MGDA:
    """Min-norm combination of per-task gradients.

    Args:
        normalization: ``"none"`` (default), ``"l2"``, ``"loss"`` or ``"loss+"``.
        max_iter: Frank-Wolfe iterations for more than two tasks.
    """

    def __init__(self, *, normalization: Normalization = "none", max_iter: int = 250) -> None:
        if normalization not in get_args(Normalization):
            raise ValueError(f"normalization must be one of {get_args(Normalization)}, "
                             f"got {normalization!r}")
        self.normalization = normalization
        self.max_iter = max_iter

    def _scales(self, gram: Tensor, losses: dict[str, Tensor]) -> Tensor:
        norms = gram.diagonal().clamp_min(0).sqrt()  # [T]
        loss = torch.stack([v.detach() for v in losses.values()]).to(norms)  # [T]
        scale = {"none": torch.ones_like(norms), "l2": norms, "loss": loss,
                 "loss+": loss * norms}[self.normalization]
        return torch.where(scale > 0, scale, torch.ones_like(scale))  # a zero gradient stays 0

    def task_weights(self, grads: TaskGradients, losses: Mapping[str, Tensor]) -> dict[
            str, Tensor]:
        """``{task: alpha_t / s_t}``: the weights of the raw gradients (and losses)."""
        checked = check_task_losses(losses)
        check_same_tasks(grads.keys(), tuple(checked), "grads")
        checked = {t: checked[t] for t in grads}
        gram = gradient_gram(grads).detach().double()  # [T, T]
        scale = self._scales(gram, checked)  # [T]
        alpha = min_norm_weights(gram / torch.outer(scale, scale), max_iter=self.max_iter)
        weights = (alpha / scale.cpu()).float()  # [T]
        device = next(iter(checked.values())).device
        return dict(zip(grads, weights.to(device).unbind(0), strict=True))

    def combine(self, grads: TaskGradients, losses: Mapping[str, Tensor]) -> CombinedGradient:
        """The min-norm direction for the shared parameters; heads get the same weights."""
        weights = self.task_weights(grads, losses)
        return CombinedGradient(combine_gradients(grads, weights), weights)
