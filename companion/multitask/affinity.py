"""Inter-task affinity by look-ahead (Fifty et al., NeurIPS 2021, "TAG").

How much does one gradient step on task ``i`` alone, applied to the shared parameters,
change task ``j``'s loss on the same batch?

    theta_s' = theta_s - lr * grad_{theta_s} L_i(theta)
    Z[i, j]  = 1 - L_j(theta_s', theta_j) / L_j(theta_s, theta_j)

``Z[i, j] > 0``: the step for ``i`` also lowers ``j``'s loss (positive transfer);
``Z[i, j] < 0``: it raises it. Averaged over training, Fifty et al. group tasks by it.

Chapter: Multi-task learning (task relatedness). Reference: :cite:t:`fifty2021efficiently`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from companion._checks import check_positive_float
from companion.multitask._checks import check_task_losses
from companion.multitask.gradients import task_gradients

__all__ = ["lookahead_affinity"]

LossesAt = Callable[[Mapping[str, Tensor] | None], Mapping[str, Tensor]]


def lookahead_affinity(losses_at: LossesAt, shared: Mapping[str, Tensor], *,
                       lr: float) -> Tensor:
    """The ``[T, T]`` look-ahead affinity matrix ``Z[i, j]`` (rows: the task stepped on).

    Args:
        losses_at: ``params -> {task: loss}`` on one fixed batch, where ``params`` (or None
            for the current weights) overrides the named parameters, e.g.
            ``lambda p: learner.task_losses(batch, p)`` with ``shared =
            learner.model.shared_parameters()``.
        shared: name -> the shared parameters (names as ``losses_at`` expects them).
        lr: the look-ahead step size (the training learning rate in the paper).

    Returns:
        ``Z`` (float64), tasks in the order ``losses_at`` returns them.
    """
    check_positive_float("lr", lr)
    before = check_task_losses(losses_at(None), name="losses_at(None)")
    grads = task_gradients(before, shared, retain_graph=False)
    base = torch.stack([v.detach().double() for v in before.values()])  # [T]
    if bool((base <= 0).any()):
        raise ValueError(f"losses_at(None): every loss must be positive for a relative change, "
                         f"got {base.tolist()}")
    rows = []
    with torch.no_grad():
        for task in before:
            stepped = {n: p.detach() - lr * grads[task][n] for n, p in shared.items()}
            after = check_task_losses(losses_at(stepped), tasks=tuple(before),
                                      name="losses_at(params)")
            rows.append(1 - torch.stack([v.double() for v in after.values()]) / base)  # [T]
    return torch.stack(rows)  # [T, T]
