"""In-context linear regression tasks (Garg et al., 2022) and the least-squares reference.

Each task is a weight vector ``w ~ N(0, I_d)``; its examples are ``x ~ N(0, I_d)`` and
``y = w . x + noise * eps`` with ``eps ~ N(0, 1)``. A model that reads the ``n`` support
pairs and predicts ``y`` for a query ``x`` is doing in-context regression; with noiseless
data and ``n >= d`` examples, ordinary least squares recovers ``w`` exactly, and for
``n < d`` the minimum-norm least-squares solution is the posterior mean of ``w`` under the
prior ``N(0, I_d)`` as the noise goes to zero (the Bayes-optimal prediction), so it is the
reference an in-context learner is compared with.

Chapter: Model-based meta-learning. Reference: :cite:t:`garg2022what`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from companion._checks import check_positive_int, generator_from
from companion.data.episode import Episode, EpisodeBatch

__all__ = ["LinearRegressionSampler", "LinearRegressionTasks", "least_squares_predict"]


@dataclass(frozen=True)
class LinearRegressionTasks:
    """The distribution over noiseless (or noisy) linear regression tasks in ``dim`` dimensions.

    Args:
        dim: input dimension ``d``.
        noise: standard deviation of the Gaussian noise added to every ``y`` (0: noiseless).
    """

    dim: int
    noise: float = 0.0

    def __post_init__(self) -> None:
        check_positive_int("dim", self.dim)
        if (not isinstance(self.noise, (int, float)) or isinstance(self.noise, bool)
                or not math.isfinite(self.noise) or self.noise < 0):
            raise ValueError(f"noise must be a finite number >= 0, got {self.noise!r}")

    def sample(self, n_tasks: int, *, n_support: int, n_query: int,
               generator: torch.Generator,
               dtype: torch.dtype = torch.float32) -> tuple[EpisodeBatch, Tensor]:
        """Draw ``n_tasks`` weight vectors and their support and query examples.

        Returns:
            The episodes (``support_x`` ``[n_tasks, n_support, dim]``, ``support_y``
            ``[n_tasks, n_support, 1]``; query the same with ``n_query``) and the weights
            ``[n_tasks, dim]``.
        """
        for name, value in (("n_tasks", n_tasks), ("n_support", n_support),
                            ("n_query", n_query)):
            check_positive_int(name, value)
        w = torch.randn(n_tasks, self.dim, generator=generator, dtype=dtype)  # [T, d]
        n = n_support + n_query
        x = torch.randn(n_tasks, n, self.dim, generator=generator, dtype=dtype)  # [T, n, d]
        y = torch.einsum("tnd,td->tn", x, w)[..., None]  # [T, n, 1]
        if self.noise > 0:
            y = y + self.noise * torch.randn(y.shape, generator=generator, dtype=dtype)
        episodes = EpisodeBatch(x[:, :n_support], y[:, :n_support],
                                x[:, n_support:], y[:, n_support:])
        return episodes, w

    def sampler(self, *, n_support: int, n_query: int, generator: torch.Generator | None = None,
                seed: int | None = None) -> LinearRegressionSampler:
        """A task source with ``sample_batch(n)`` and its own generator (for a training loop)."""
        check_positive_int("n_support", n_support)
        check_positive_int("n_query", n_query)
        return LinearRegressionSampler(self, n_support, n_query, generator_from(generator, seed))


@dataclass
class LinearRegressionSampler:
    """Draws batches of regression episodes from ``tasks`` with ``generator``."""

    tasks: LinearRegressionTasks
    n_support: int
    n_query: int
    generator: torch.Generator

    def sample_batch(self, n_tasks: int) -> EpisodeBatch:
        episodes, _ = self.tasks.sample(n_tasks, n_support=self.n_support,
                                        n_query=self.n_query, generator=self.generator)
        return episodes

    def sample(self) -> Episode:
        """One episode (for per-episode evaluation loops)."""
        return self.sample_batch(1)[0]


def least_squares_predict(support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
    """Predictions of the minimum-norm least-squares fit of the support set.

    ``w_hat = pinv(X) y`` is the least-squares solution for ``n >= d`` (exact on noiseless
    data when ``X`` has full column rank) and the minimum-norm interpolant for ``n < d``.

    Args:
        support_x: ``[..., n, d]``.
        support_y: ``[..., n, 1]`` or ``[..., n]``.
        query_x: ``[..., m, d]``.

    Returns:
        ``[..., m, 1]`` (or ``[..., m]``, matching ``support_y``).

    Raises:
        ValueError: mismatched shapes, or NaN/inf in any input.
    """
    squeeze = support_y.ndim == support_x.ndim - 1
    y = support_y[..., None] if squeeze else support_y  # [..., n, 1]
    if support_x.shape[:-1] != y.shape[:-1] or y.shape[-1] != 1:
        raise ValueError(f"support_x {tuple(support_x.shape)} and support_y "
                         f"{tuple(support_y.shape)} need the same [..., n] and one target")
    if query_x.shape[-1] != support_x.shape[-1] or query_x.shape[:-2] != support_x.shape[:-2]:
        raise ValueError(f"query_x {tuple(query_x.shape)} does not match support_x "
                         f"{tuple(support_x.shape)}")
    for name, t in (("support_x", support_x), ("support_y", support_y), ("query_x", query_x)):
        if not torch.isfinite(t).all():
            raise ValueError(f"{name} contains NaN or inf")
    w = torch.linalg.pinv(support_x) @ y  # [..., d, 1]
    out = query_x @ w  # [..., m, 1]
    return out[..., 0] if squeeze else out
