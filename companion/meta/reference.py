"""A deliberately plain MAML: the per-task loop with ``torch.autograd.grad(create_graph=True)``.

This is MAML as the original reference implementation computes it, written for reading, not
speed. It shares no code with :mod:`companion.meta.functional` (it uses ordinary autograd
instead of ``torch.func.grad``), so the tests use it as the independent ground truth for the
library's meta-gradients (``benchmarks/maml_speed.py`` has its own per-task reference,
with one backward per task as the peer libraries' users write it).

Chapter: MAML (the algorithm from scratch).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call

from companion.data.episode import EpisodeBatch

__all__ = ["naive_maml_loss"]


def naive_maml_loss(
    model: nn.Module,
    batch: EpisodeBatch,
    *,
    inner_lr: float,
    inner_steps: int,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    first_order: bool = False,
) -> Tensor:
    """Mean query loss after ``inner_steps`` SGD steps per task; call ``.backward()`` on it.

    For each task: start from the model's weights, take the inner steps on the support set
    (keeping the graph of each gradient unless ``first_order``), then score the query set.
    """
    theta: dict[str, Tensor] = dict(model.named_parameters())
    losses = []
    for sx, sy, qx, qy in zip(batch.support_x, batch.support_y, batch.query_x, batch.query_y,
                              strict=True):
        fast: dict[str, Tensor] = dict(theta)
        for _ in range(inner_steps):
            support_loss = loss_fn(functional_call(model, fast, (sx,)), sy)
            grads = torch.autograd.grad(support_loss, list(fast.values()),
                                        create_graph=not first_order)
            fast = {name: w - inner_lr * g for (name, w), g in zip(fast.items(), grads,
                                                                   strict=True)}
        losses.append(loss_fn(functional_call(model, fast, (qx,)), qy))
    return torch.stack(losses).mean()
