"""A synthetic multi-task regression family whose relatedness and loss scales can be dialled.

Task ``t`` is a noisy linear function of a shared input ``x ~ N(0, I_d)``:

    y_t = scale_t * <w_t, x> + noise * eps,      ||w_t|| = 1,  <w_s, w_t> = cosine (s != t)

so ``cosine`` sets the angle between every pair of task optima (1: the same task up to
scale, 0: orthogonal, < 0: conflicting; at least ``-1 / (T - 1)``), and ``scales`` sets how
different the loss magnitudes are (the imbalance GradNorm's toy experiment creates with its
``sigma_i``). The optima are the rows of ``Q diag(sqrt(lambda))`` for the eigen-decomposition
of the Gram matrix ``(1 - cosine) I + cosine 11^T``, padded with zeros to ``d``.

Chapter: Multi-task learning (mechanics). Reference: :cite:t:`chen2018gradnorm`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from companion._checks import check_positive_int, generator_from
from companion.data.multitask_batch import MultiTaskBatch

__all__ = ["LinearTaskFamily", "LinearTaskSampler"]


@dataclass(frozen=True)
class LinearTaskFamily:
    """``n_tasks`` linear regression tasks on one input.

    Args:
        n_tasks: ``T`` (tasks are named ``"task0"``, ``"task1"``, ...).
        dim: input size ``d >= T``.
        cosine: cosine similarity between every pair of optima, in ``[-1/(T-1), 1]``.
        scales: ``T`` output scales (default all 1).
        noise: standard deviation of the additive noise (>= 0).
    """

    n_tasks: int = 2
    dim: int = 10
    cosine: float = 0.0
    scales: tuple[float, ...] | None = None
    noise: float = 0.0

    def __post_init__(self) -> None:
        check_positive_int("n_tasks", self.n_tasks)
        check_positive_int("dim", self.dim)
        if self.dim < self.n_tasks:
            raise ValueError(f"dim must be >= n_tasks={self.n_tasks}, got {self.dim}")
        low = -1.0 / (self.n_tasks - 1) if self.n_tasks > 1 else -1.0
        if not isinstance(self.cosine, (int, float)) or not low <= self.cosine <= 1:
            raise ValueError(f"cosine must lie in [{low:.3g}, 1] for {self.n_tasks} tasks, "
                             f"got {self.cosine!r}")
        if self.scales is not None:
            if len(self.scales) != self.n_tasks or not all(
                    math.isfinite(s) and s > 0 for s in self.scales):
                raise ValueError(f"scales must hold {self.n_tasks} positive finite numbers, "
                                 f"got {self.scales!r}")
        if not math.isfinite(self.noise) or self.noise < 0:
            raise ValueError(f"noise must be a finite number >= 0, got {self.noise!r}")

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(f"task{t}" for t in range(self.n_tasks))

    def optima(self) -> Tensor:
        """``[T, d]`` unit vectors ``w_t`` with pairwise cosine ``cosine`` (float64)."""
        n = self.n_tasks
        gram = (1 - self.cosine) * torch.eye(n, dtype=torch.float64) + self.cosine  # [T, T]
        eigenvalues, q = torch.linalg.eigh(gram)
        w = q * eigenvalues.clamp_min(0).sqrt()  # [T, T], rows w_t, w w^T = gram
        return torch.cat([w, torch.zeros(n, self.dim - n, dtype=torch.float64)], dim=1)

    def targets(self, x: Tensor) -> dict[str, Tensor]:
        """Noise-free targets ``{task: [n, 1]}`` for inputs ``x`` ``[n, d]``."""
        scales = torch.tensor(self.scales or (1.0,) * self.n_tasks, dtype=x.dtype)
        y = (x @ self.optima().to(x).T) * scales.to(x.device)  # [n, T]
        return {t: y[:, i:i + 1] for i, t in enumerate(self.tasks)}

    def sample(self, n: int, *, generator: torch.Generator) -> MultiTaskBatch:
        """``n`` shared inputs ``[n, d]`` (float32) and each task's noisy targets ``[n, 1]``."""
        check_positive_int("n", n)
        x = torch.randn(n, self.dim, generator=generator)  # [n, d]
        clean = self.targets(x)
        y = {t: v + self.noise * torch.randn(v.shape, generator=generator)
             for t, v in clean.items()}
        return MultiTaskBatch.shared(x, y)

    def sampler(self, *, generator: torch.Generator | None = None,
                seed: int | None = None) -> LinearTaskSampler:
        """A source for :func:`companion.fit`: fresh samples every batch."""
        return LinearTaskSampler(self, generator_from(generator, seed))


@dataclass
class LinearTaskSampler:
    """Draws batches of a :class:`LinearTaskFamily` with its own ``generator``."""

    family: LinearTaskFamily
    generator: torch.Generator

    def sample_batch(self, n: int) -> MultiTaskBatch:
        return self.family.sample(n, generator=self.generator)
