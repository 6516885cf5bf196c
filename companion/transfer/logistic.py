"""Multinomial logistic regression fitted to convergence by full-batch L-BFGS.

The small convex workhorse of this package: the domain classifier of importance weighting
and of the proxy A-distance, and the linear probe of LP-FT. It minimises

    (1 / sum_i w_i) sum_i w_i CE(W z_i + b, y_i) + (l2 / 2) ||W||_F^2

from ``W = 0, b = 0``, so the result is deterministic (no random initialisation).

Chapter: Transfer learning.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from companion._checks import check_positive_int
from companion.transfer._checks import check_features, check_non_negative_float

__all__ = ["fit_logistic_regression"]


def fit_logistic_regression(features: Tensor, labels: Tensor, *, n_classes: int,
                            l2: float = 1e-4, max_iter: int = 100,
                            sample_weight: Tensor | None = None) -> nn.Linear:
    """Fit ``nn.Linear(d, n_classes)`` by weighted, L2-regularised cross-entropy.

    Args:
        features: ``[n, d]`` inputs (detached; no gradient flows back into them).
        labels: ``[n]`` int64 in ``0 .. n_classes - 1``.
        n_classes: number of classes (>= 2).
        l2: weight-decay strength ``>= 0`` on ``W`` (not on the bias).
        max_iter: L-BFGS iterations (> 0).
        sample_weight: optional ``[n]`` non-negative example weights (not all zero).

    Returns:
        A fitted linear layer on the device and dtype of ``features``.
    """
    features = check_features("features", features).detach()
    check_positive_int("max_iter", max_iter)
    l2 = check_non_negative_float("l2", l2)
    if not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"n_classes must be an int >= 2, got {n_classes!r}")
    if labels.dtype != torch.int64 or labels.shape != features.shape[:1]:
        raise ValueError(f"labels must be int64 with shape [{features.shape[0]}], got "
                         f"{labels.dtype} {tuple(labels.shape)}")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must lie in 0..{n_classes - 1}")
    weight = torch.ones(len(labels), dtype=features.dtype, device=features.device)
    if sample_weight is not None:
        if (sample_weight.shape != labels.shape or not torch.isfinite(sample_weight).all()
                or (sample_weight < 0).any() or sample_weight.sum() <= 0):
            raise ValueError("sample_weight must be [n] finite, non-negative, not all zero")
        weight = sample_weight.detach().to(features.dtype)
    layer = nn.Linear(features.shape[1], n_classes, device=features.device,
                      dtype=features.dtype)
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()
    optimizer = torch.optim.LBFGS(layer.parameters(), lr=1, max_iter=max_iter,
                                  line_search_fn="strong_wolfe", tolerance_grad=1e-9,
                                  tolerance_change=1e-12)

    def closure() -> Tensor:
        optimizer.zero_grad()
        ce = F.cross_entropy(layer(features), labels, reduction="none")  # [n]
        loss = (weight * ce).sum() / weight.sum() + 0.5 * l2 * layer.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    layer.requires_grad_(False)
    return layer
