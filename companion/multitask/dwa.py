"""Dynamic Weight Average (Liu, Johns & Davison, CVPR 2019): weight tasks by how slowly they learn.

With ``L_k(t)`` the mean loss of task ``k`` over "epoch" ``t`` (here: a block of ``period``
training steps) and ``K`` tasks, the weights of epoch ``t`` are

    r_k(t-1) = L_k(t-1) / L_k(t-2)
    w_k(t)   = K exp(r_k(t-1) / T) / sum_i exp(r_i(t-1) / T)

and ``w_k = 1`` for the first two epochs. A task whose loss fell less in the last epoch
(ratio near 1) gets more weight; the temperature ``T`` softens the differences (``T = 2`` in
the paper). The weights need only the losses, not gradients, so DWA costs nothing extra.

Chapter: Multi-task learning (loss weighting). Reference: :cite:t:`liu2019end`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn

from companion._checks import check_positive_float, check_positive_int
from companion.multitask._checks import check_task_losses, check_tasks

__all__ = ["DynamicWeightAverage"]


class DynamicWeightAverage(nn.Module):
    """DWA weights from the loss history (kept in buffers, so checkpoints carry it).

    Args:
        tasks: the task names.
        temperature: ``T`` > 0 (the paper uses 2).
        period: training steps per "epoch" whose mean loss enters the ratio (1: every step).
    """

    def __init__(self, tasks: Iterable[str], *, temperature: float = 2.0, period: int = 1) -> None:
        super().__init__()
        self.tasks = check_tasks(tasks)
        self.temperature = check_positive_float("temperature", temperature)
        self.period = check_positive_int("period", period)
        n = len(self.tasks)
        self.register_buffer("history", torch.ones(2, n, dtype=torch.float64))  # L(t-2), L(t-1)
        self.register_buffer("epochs", torch.zeros((), dtype=torch.int64))  # completed epochs
        self.register_buffer("running_sum", torch.zeros(n, dtype=torch.float64))
        self.register_buffer("running_count", torch.zeros((), dtype=torch.int64))

    def weight_tensor(self) -> Tensor:
        """``[K]`` current weights, in the order of ``tasks`` (all 1 until two epochs are done)."""
        n = len(self.tasks)
        if int(self.get_buffer("epochs")) < 2:
            return torch.ones(n, dtype=torch.float64)
        history = self.get_buffer("history")
        ratio = history[1] / history[0]  # [K], r_k(t-1)
        return n * torch.softmax(ratio / self.temperature, dim=0)

    def weights(self) -> dict[str, float]:
        return dict(zip(self.tasks, self.weight_tensor().tolist(), strict=True))

    def combine(self, losses: Mapping[str, Tensor]) -> Tensor:
        """``sum_k w_k L_k`` with the current weights. -> ``[]``."""
        checked = check_task_losses(losses, tasks=self.tasks)
        stacked = torch.stack(list(checked.values()))  # [K]
        return (self.weight_tensor().to(stacked) * stacked).sum()

    @torch.no_grad()
    def observe(self, losses: Mapping[str, Tensor]) -> None:
        """Record one training step's losses; every ``period`` steps an epoch is completed.

        Raises:
            ValueError: a loss that is not finite, or an epoch mean that is not positive (the
                ratio ``L(t-1) / L(t-2)`` would be undefined).
        """
        checked = check_task_losses(losses, tasks=self.tasks)
        values = torch.stack([v.detach().double().cpu() for v in checked.values()])  # [K]
        self.get_buffer("running_sum").add_(values.to(self.get_buffer("running_sum")))
        count = self.get_buffer("running_count")
        count.add_(1)
        if int(count) < self.period:
            return
        mean = self.get_buffer("running_sum") / int(count)  # [K]
        if bool((mean <= 0).any()):
            raise ValueError(f"losses: DWA needs positive epoch losses, got {mean.tolist()}")
        history = self.get_buffer("history")
        history[0] = history[1].clone()
        history[1] = mean
        self.get_buffer("epochs").add_(1)
        self.get_buffer("running_sum").zero_()
        count.zero_()
