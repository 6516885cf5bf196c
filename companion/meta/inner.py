"""The inner optimisers of optimisation-based meta-learning, as small functional objects.

An inner optimiser maps (weights, gradients, state) to (new weights, new state) without
touching any module, so the inner loop stays a pure function that ``torch.func`` can
differentiate through (MAML) or ``vmap`` over (a batch of tasks):

* :class:`InnerSGD`: ``w - lr * g``, with a float rate or one learned rate per weight
  (Meta-SGD);
* :class:`InnerAdam`: Adam with bias-corrected moments; Reptile uses it with ``beta1 = 0``
  and keeps its statistics across tasks (:class:`AdamMoments`).

Chapter: MAML; Reptile.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

__all__ = ["AdamMoments", "InnerAdam", "InnerOptimizer", "InnerSGD", "minibatch_rows"]

Params = dict[str, Tensor]
LearningRate = float | Mapping[str, Tensor]


def _check_lr(lr: object) -> None:
    if isinstance(lr, Mapping):
        return  # learned per-weight rates (Meta-SGD) are tensors and may take any value
    if (isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr)
            or lr <= 0):
        raise ValueError(f"lr must be a positive finite number (or a dict of per-parameter "
                         f"tensors), got {lr!r}")


def _rate(lr: LearningRate, name: str) -> float | Tensor:
    return lr[name] if isinstance(lr, Mapping) else lr


class InnerOptimizer(Protocol):
    """What :func:`companion.meta.inner_adapt` needs from an inner optimiser."""

    def init(self, params: Params) -> Any:
        """The starting state for weights ``params``."""
        ...

    def step(self, params: Params, grads: Params, state: Any) -> tuple[Params, Any]:
        """New weights (same names as ``grads``) and the new state."""
        ...


@dataclass(frozen=True)
class InnerSGD:
    """Plain gradient descent, ``w <- w - lr * g`` (MAML's inner step)."""

    lr: LearningRate

    def __post_init__(self) -> None:
        _check_lr(self.lr)

    def init(self, params: Params) -> None:
        return None

    def step(self, params: Params, grads: Params, state: None) -> tuple[Params, None]:
        return {k: params[k] - _rate(self.lr, k) * g for k, g in grads.items()}, None


@dataclass
class AdamMoments:
    """The state of :class:`InnerAdam`, carried from call to call if wanted.

    Reptile's reference implementation keeps its inner Adam's statistics across tasks (only
    the weights are reset to the meta-parameters). ``m`` and ``v`` are the first and second
    moments, ``t`` the number of steps taken so far.
    """

    m: Params
    v: Params
    t: int = 0

    @staticmethod
    def zeros_like(params: Mapping[str, Tensor]) -> AdamMoments:
        return AdamMoments({k: torch.zeros_like(p) for k, p in params.items()},
                           {k: torch.zeros_like(p) for k, p in params.items()})

    def copy(self) -> AdamMoments:
        return AdamMoments(dict(self.m), dict(self.v), self.t)


@dataclass(frozen=True)
class InnerAdam:
    """Adam (Kingma and Ba, 2015) with bias correction, functional.

    Its square root has an infinite derivative at zero, so it is meant for first-order inner
    loops (Reptile, first-order MAML): :func:`~companion.meta.inner_adapt` refuses it for a
    second-order one.
    """

    lr: LearningRate
    betas: tuple[float, float] = (0.0, 0.999)
    eps: float = 1e-8

    def __post_init__(self) -> None:
        _check_lr(self.lr)
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        if not self.eps >= 0:
            raise ValueError(f"eps must be >= 0, got {self.eps!r}")

    def init(self, params: Params) -> AdamMoments:
        return AdamMoments.zeros_like(params)

    def step(self, params: Params, grads: Params, state: AdamMoments
             ) -> tuple[Params, AdamMoments]:
        b1, b2 = self.betas
        t = state.t + 1
        m = {k: b1 * state.m[k] + (1 - b1) * g for k, g in grads.items()}
        v = {k: b2 * state.v[k] + (1 - b2) * g * g for k, g in grads.items()}
        new = {k: params[k] - _rate(self.lr, k) * (m[k] / (1 - b1**t))
               / ((v[k] / (1 - b2**t)).sqrt() + self.eps) for k in grads}
        return new, AdamMoments(m, v, t)


def minibatch_rows(n: int, batch_size: int | None,
                   generator: torch.Generator | None) -> Iterator[Tensor | None]:
    """Row indices for each inner step: consecutive slices of random permutations of
    ``range(n)`` (a new permutation each pass), or None forever for full-batch steps."""
    if batch_size is None:
        while True:
            yield None
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
    if generator is None:
        raise ValueError("batch_size needs generator= to draw the minibatches")
    size = min(batch_size, n)
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - size + 1, size):
            yield order[start:start + size]
