"""Scores of a prediction, and their mean with a 95% confidence interval.

One definition of each metric for the whole library: the learners' training metrics, the
shared :func:`companion.evaluate` and the chapters all call these.

* classification: :func:`accuracy`;
* regression: :func:`mse`, :func:`mae`, :func:`rmse`;
* ranking: :func:`ndcg_at_k`;
* over episodes (tasks, users, seeds): :func:`mean_ci95` -> :class:`MeanCI`.

Chapter: Concepts (first experiment); used by every later chapter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "Z_95",
    "AccuracyCI",
    "MeanCI",
    "accuracy",
    "mae",
    "mean_ci95",
    "mse",
    "ndcg_at_k",
    "rmse",
]

Z_95 = 1.959963984540054  # two-sided 95% quantile of the standard normal


@dataclass(frozen=True)
class MeanCI:
    """Mean of per-episode scores with the half-width of its 95% confidence interval.

    ``ci95 = 1.96 * std / sqrt(n)`` (normal approximation over episodes, as in the papers).
    ``str()`` shows percentages when ``percent`` is set (accuracies are fractions in
    ``[0, 1]``), plain numbers otherwise (errors such as the MSE).
    """

    mean: float
    ci95: float
    n_episodes: int
    values: tuple[float, ...] = field(default=(), repr=False)
    percent: bool = True

    def __str__(self) -> str:
        if self.percent:
            return f"{100 * self.mean:.2f} ± {100 * self.ci95:.2f}% ({self.n_episodes} episodes)"
        return f"{self.mean:.4g} ± {self.ci95:.2g} ({self.n_episodes} episodes)"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (without the per-episode values)."""
        return {"mean": self.mean, "ci95": self.ci95, "n_episodes": self.n_episodes}


AccuracyCI = MeanCI  # the name the first chapters use


def mean_ci95(values: Sequence[float] | Tensor, *, percent: bool = True) -> MeanCI:
    """Mean and 95% confidence half-width of per-episode scores (at least two, all finite)."""
    v = torch.as_tensor(values, dtype=torch.float64).detach().cpu().flatten()
    if v.numel() < 2:
        raise ValueError(f"need at least 2 values for a confidence interval, got {v.numel()}")
    if not torch.isfinite(v).all():
        raise ValueError("values must be finite")
    half = Z_95 * v.std(unbiased=True).item() / math.sqrt(v.numel())
    return MeanCI(v.mean().item(), half, v.numel(), tuple(v.tolist()), percent)


def accuracy(logits: Tensor, labels: Tensor) -> Tensor:
    """Fraction of rows whose arg-max equals the label. ``[n, n_way]``, ``[n]`` -> scalar.

    Works under ``torch.func.vmap`` (one task at a time, the shapes checked are per task).
    """
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"expected logits [n, n_way] and labels [n], got "
                         f"{tuple(logits.shape)} and {tuple(labels.shape)}")
    return (logits.argmax(dim=1) == labels).float().mean()


def _check_same_shape(predictions: Tensor, targets: Tensor) -> None:
    if predictions.shape != targets.shape:
        raise ValueError(f"predictions and targets must have the same shape, got "
                         f"{tuple(predictions.shape)} and {tuple(targets.shape)}")


def mse(predictions: Tensor, targets: Tensor) -> Tensor:
    """Mean squared error over all elements (scalar)."""
    _check_same_shape(predictions, targets)
    return (predictions - targets).square().mean()


def mae(predictions: Tensor, targets: Tensor) -> Tensor:
    """Mean absolute error over all elements (scalar)."""
    _check_same_shape(predictions, targets)
    return (predictions - targets).abs().mean()


def rmse(predictions: Tensor, targets: Tensor) -> Tensor:
    """Root mean squared error (scalar)."""
    return mse(predictions, targets).sqrt()


def ndcg_at_k(scores: Tensor, relevance: Tensor, k: int) -> Tensor:
    """Normalised discounted cumulative gain of the top ``k`` items ranked by ``scores``.

    ``DCG@k = sum_{i<k} (2^{rel_i} - 1) / log2(i + 2)`` over the items in predicted order,
    divided by the same sum in the ideal order (Jarvelin and Kekalainen, 2002). Items with
    tied scores keep their input order. A list whose relevances are all zero scores 0.

    Args:
        scores: ``[n]`` predicted scores (higher = ranked first).
        relevance: ``[n]`` graded relevance (e.g. ratings), non-negative.
        k: cut-off, ``>= 1`` (lists shorter than ``k`` use all their items).

    Returns:
        A scalar in ``[0, 1]``.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    if scores.ndim != 1 or relevance.shape != scores.shape or scores.numel() == 0:
        raise ValueError(f"scores and relevance must be non-empty [n] tensors of one shape, "
                         f"got {tuple(scores.shape)} and {tuple(relevance.shape)}")
    if not (torch.isfinite(scores).all() and torch.isfinite(relevance).all()):
        raise ValueError("scores and relevance must be finite")
    if (relevance < 0).any():
        raise ValueError("relevance must be non-negative")
    top = min(k, scores.numel())
    gains = 2.0 ** relevance.double() - 1  # [n]
    discounts = 1.0 / torch.log2(torch.arange(top, dtype=torch.float64,
                                              device=scores.device) + 2)  # [top]
    order = torch.sort(scores, descending=True, stable=True).indices[:top]
    ideal = torch.sort(gains, descending=True).values[:top]
    best = (ideal * discounts).sum()
    if best == 0:
        return torch.zeros((), dtype=torch.float64, device=scores.device)
    return (gains[order] * discounts).sum() / best
