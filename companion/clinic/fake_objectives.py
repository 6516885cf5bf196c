"""Mistake: objectives that look like meta-learning, multi-task or transfer learning but are not.

Three snippets, each a loss function with the right name and the wrong content:

1. **A meta-objective without an adaptation step**: ``mean_T L_T^query(theta)``. Symptom: its
   gradient is exactly the gradient of joint training on the pooled query sets (equal task
   sizes), so "meta-training" learns one average model, not an initialisation that adapts.
   Corrected: ``mean_T L_T^query(theta - alpha grad L_T^support(theta))``
   (:func:`correct_meta_objective`, :class:`companion.meta.MAML`).
2. **A multi-task objective whose per-task parameters share nothing**: ``sum_t L_t(theta_t)``.
   Symptom: the gradient of task A's loss with respect to every parameter task B uses is zero;
   the sum is N independent single-task problems trained in one loop, with nothing transferred.
   Corrected: shared parameters (a trunk) that every task's loss reaches
   (:class:`companion.multitask.HardSharing`).
3. **A transfer objective that never refers to the source**: ``L_target(theta)`` from a random
   start, called "transfer". Symptom: the objective (value and gradient) is the same whatever
   the source data; nothing is transferred. Corrected: an objective in which the source
   appears, here joint training ``L_target + lambda L_source`` on shared weights (other correct
   forms: start from the source-trained weights, :mod:`companion.transfer`, or penalise the
   distance to them).

Models here are linear (``y = x W``) so the tests can reason in closed form.

Chapter: Applications, open problems and FAQ (the clinic). References: :cite:t:`finn2017model`,
:cite:t:`caruana1997multitask`, :cite:t:`pan2010survey`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "correct_meta_objective",
    "correct_multitask_losses",
    "correct_transfer_objective",
    "joint_objective",
    "mistaken_meta_objective",
    "mistaken_multitask_losses",
    "mistaken_transfer_objective",
]

Data = tuple[Tensor, Tensor]  # x [n, d], y [n, 1]
Task = tuple[Tensor, Tensor, Tensor, Tensor]  # support x, y, query x, y


def _loss(w: Tensor, x: Tensor, y: Tensor) -> Tensor:
    return F.mse_loss(x @ w, y)


def mistaken_meta_objective(w: Tensor, tasks: Sequence[Task]) -> Tensor:
    """MISTAKEN (1): the query losses at ``w`` itself; the support sets are never used."""
    return torch.stack([_loss(w, qx, qy) for _, _, qx, qy in tasks]).mean()


def correct_meta_objective(w: Tensor, tasks: Sequence[Task], *, inner_lr: float) -> Tensor:
    """CORRECTED (1): the query losses after one gradient step on each support set."""
    losses = []
    for sx, sy, qx, qy in tasks:
        (g,) = torch.autograd.grad(_loss(w, sx, sy), w, create_graph=True)
        losses.append(_loss(w - inner_lr * g, qx, qy))
    return torch.stack(losses).mean()


def joint_objective(w: Tensor, tasks: Sequence[Task]) -> Tensor:
    """Plain supervised learning on the pooled query sets (the reference for mistake 1)."""
    x = torch.cat([qx for _, _, qx, _ in tasks])
    y = torch.cat([qy for _, _, _, qy in tasks])
    return _loss(w, x, y)


def mistaken_multitask_losses(params: Mapping[str, Tensor],
                              tasks: Mapping[str, Data]) -> dict[str, Tensor]:
    """MISTAKEN (2): task ``t`` uses only ``params[t]`` (``[d, 1]`` each)."""
    return {t: _loss(params[t], x, y) for t, (x, y) in tasks.items()}


def correct_multitask_losses(params: Mapping[str, Tensor],
                             tasks: Mapping[str, Data]) -> dict[str, Tensor]:
    """CORRECTED (2): a shared ``params["trunk"]`` (``[d, h]``) and a head ``params[t]``
    (``[h, 1]``) per task."""
    return {t: _loss(params["trunk"] @ params[t], x, y) for t, (x, y) in tasks.items()}


def mistaken_transfer_objective(w: Tensor, source: Data, target: Data) -> Tensor:
    """MISTAKEN (3): the target loss only; ``source`` is accepted and ignored."""
    return _loss(w, *target)


def correct_transfer_objective(w: Tensor, source: Data, target: Data, *,
                               source_weight: float = 0.5) -> Tensor:
    """CORRECTED (3): target loss plus ``source_weight`` times the source loss."""
    return _loss(w, *target) + source_weight * _loss(w, *source)
