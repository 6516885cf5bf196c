"""CORAL: align the second-order statistics (covariances) of source and target features.

    L_CORAL = ||C_S - C_T||_F^2 / (4 d^2),

    C = (X^T X - (1^T X)^T (1^T X) / n) / (n - 1)      (the unbiased covariance, ``[d, d]``),

for source features ``X_S [n_s, d]`` and target features ``X_T [n_t, d]``. Deep CORAL adds
``weight * L_CORAL`` to the source classification loss.

Chapter: Transfer learning (feature-based transfer).
Reference: :cite:t:`sun2016deep`.
"""

from __future__ import annotations

from torch import Tensor

from companion.transfer._checks import check_features, check_pair

__all__ = ["coral_loss", "covariance"]


def covariance(x: Tensor) -> Tensor:
    """Unbiased covariance of the rows of ``x``: ``[n, d]`` (n >= 2) -> ``[d, d]``."""
    x = check_features("x", x, min_rows=2)
    centred = x - x.mean(0, keepdim=True)  # [n, d]
    return centred.T @ centred / (x.shape[0] - 1)  # [d, d]


def coral_loss(source: Tensor, target: Tensor) -> Tensor:
    """The CORAL loss ``||C_S - C_T||_F^2 / (4 d^2)``.

    Args:
        source: ``[n_s, d]`` source features (``n_s >= 2``).
        target: ``[n_t, d]`` target features (``n_t >= 2``).

    Returns:
        A scalar >= 0, zero iff the two sample covariances are equal.
    """
    source, target = check_pair(source, target, min_rows=2)
    d = source.shape[1]
    diff = covariance(source) - covariance(target)  # [d, d]
    return diff.pow(2).sum() / (4 * d * d)
