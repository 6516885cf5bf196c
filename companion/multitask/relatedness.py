"""Gradient cosine similarity between tasks: do two tasks pull the shared weights together?

    cos(i, j) = <g_i, g_j> / (||g_i|| ||g_j||)

for the tasks' gradients of the shared parameters. Negative values are the *conflicts*
PCGrad removes; tracked over training, persistently negative similarity is a warning sign of
negative transfer (Yu et al., 2020, use it to motivate PCGrad).

Chapter: Multi-task learning (task relatedness). Reference: :cite:t:`yu2020gradient`.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from companion.multitask.gradients import gradient_gram

__all__ = ["gradient_cosine"]


def gradient_cosine(grads: Mapping[str, Mapping[str, Tensor]]) -> Tensor:
    """``[T, T]`` pairwise cosine similarities of the task gradients (order of ``grads``).

    A task with a zero gradient has similarity 0 with every task (and 1 with itself is not
    defined: its diagonal entry is 0 too).

    Raises:
        ValueError: a gradient holding NaN or inf.
    """
    gram = gradient_gram(grads).detach().double()  # [T, T]
    if not bool(torch.isfinite(gram).all()):
        raise ValueError("grads must be finite (a task gradient holds NaN or inf)")
    norms = gram.diagonal().clamp_min(0).sqrt()  # [T]
    denom = torch.outer(norms, norms)  # [T, T]
    return torch.where(denom > 0, gram / denom.clamp_min(1e-300), torch.zeros_like(gram))
