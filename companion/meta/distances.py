"""Distances between embeddings, shared by the metric-based methods.

Chapter: metric methods.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["DISTANCES", "pairwise_distance"]

DISTANCES = ("squared_euclidean", "euclidean", "cosine")


def pairwise_distance(a: Tensor, b: Tensor, kind: str = "squared_euclidean") -> Tensor:
    """Distances between every row of ``a`` and every row of ``b``.

    Args:
        a: ``[n, d]``.
        b: ``[m, d]``.
        kind: ``"squared_euclidean"`` ``||a - b||^2``, ``"euclidean"`` ``||a - b||``, or
            ``"cosine"`` ``1 - cos(a, b)``.

    Returns:
        ``[n, m]``.
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected [n, d] and [m, d], got {tuple(a.shape)} and {tuple(b.shape)}")
    if kind == "squared_euclidean":
        # Expanded form is faster than cdist(...)**2 and exact enough for ranking and softmax.
        d2 = a.pow(2).sum(1, keepdim=True) - 2 * a @ b.T + b.pow(2).sum(1)[None, :]  # [n, m]
        return d2.clamp_min(0)
    if kind == "euclidean":
        return torch.cdist(a, b)  # [n, m]; its gradient is 0 (not NaN) at zero distance
    if kind == "cosine":
        return 1 - F.normalize(a, dim=1) @ F.normalize(b, dim=1).T  # [n, m]
    raise ValueError(f"distance must be one of {DISTANCES}, got {kind!r}")
