"""Uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018): learn each task's noise level.

Each task ``t`` has a learned log-variance ``s_t = log sigma_t^2`` and its loss is scaled by
the precision, with a ``log sigma_t`` term that stops ``sigma_t`` from growing without bound:

    regression:      L_t / (2 sigma_t^2) + log sigma_t  =  0.5 exp(-s_t) L_t + 0.5 s_t
    classification:  L_t / sigma_t^2     + log sigma_t  =      exp(-s_t) L_t + 0.5 s_t

For a fixed loss ``L_t`` the regression form is minimised at ``sigma_t^2 = L_t`` (the
classification form at ``sigma_t^2 = 2 L_t``): noisy, high-loss tasks get small weights.
The log-variances are parameters trained by the same optimiser as the model.

Chapter: Multi-task learning (loss weighting). Reference: :cite:t:`kendall2018multi`.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from companion.multitask._checks import check_kinds, check_task_losses, check_tasks

__all__ = ["UncertaintyWeighting"]


class UncertaintyWeighting(nn.Module):
    """Homoscedastic-uncertainty weights with one log-variance per task (initialised to 0).

    Args:
        kinds: task name -> ``"regression"`` or ``"classification"`` (picks the form above).
    """

    def __init__(self, kinds: Mapping[str, str]) -> None:
        super().__init__()
        self.tasks = check_tasks(kinds.keys(), "kinds")
        self.kinds = check_kinds(kinds, self.tasks)
        self.log_variance = nn.Parameter(torch.zeros(len(self.tasks)))  # [T], s_t
        scale = [0.5 if self.kinds[t] == "regression" else 1.0 for t in self.tasks]
        self.register_buffer("_scale", torch.tensor(scale), persistent=False)  # [T]

    def variances(self) -> dict[str, Tensor]:
        """``{task: sigma_t^2}`` (detached)."""
        return dict(zip(self.tasks, self.log_variance.detach().exp().unbind(0), strict=True))

    def weights(self) -> dict[str, Tensor]:
        """``{task: weight of L_t}``: ``1 / (2 sigma^2)`` or ``1 / sigma^2`` (detached)."""
        w = self.get_buffer("_scale") * torch.exp(-self.log_variance.detach())
        return dict(zip(self.tasks, w.unbind(0), strict=True))

    def combine(self, losses: Mapping[str, Tensor]) -> Tensor:
        """``sum_t c_t exp(-s_t) L_t + 0.5 s_t`` with ``c_t`` 1/2 (regression) or 1. -> ``[]``."""
        checked = check_task_losses(losses, tasks=self.tasks)
        stacked = torch.stack(list(checked.values()))  # [T]
        s = self.log_variance.to(stacked.device)  # [T]
        scale = self.get_buffer("_scale").to(stacked.device)
        return (scale * torch.exp(-s) * stacked + 0.5 * s).sum()
