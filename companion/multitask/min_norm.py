"""The min-norm point in the convex hull of task gradients (the MGDA subproblem).

    min_{alpha in simplex} || sum_t alpha_t g_t ||^2  =  min_alpha alpha^T M alpha,

with ``M`` the Gram matrix ``M[i, j] = <g_i, g_j>``. Two tasks have a closed form: the weight
of the first gradient is

    gamma = clip( (M22 - M12) / (M11 + M22 - 2 M12), 0, 1 ).

For more tasks, Frank-Wolfe (Sener & Koltun, Algorithm 2): move toward the vertex ``e_k`` with
the smallest ``(M alpha)_k`` by the exact line-search step, which is the two-task closed form
between ``sum_t alpha_t g_t`` and ``g_k``. Everything is computed from ``M`` alone.

Chapter: Multi-task learning (gradient methods). Reference: :cite:t:`sener2018multi`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from companion._checks import check_positive_int

__all__ = ["min_norm_two", "min_norm_weights"]


def min_norm_two(m11: Tensor, m12: Tensor, m22: Tensor) -> Tensor:
    """``gamma`` minimising ``|| gamma v1 + (1 - gamma) v2 ||^2`` from the inner products.

    Args:
        m11: ``<v1, v1>``; m12: ``<v1, v2>``; m22: ``<v2, v2>`` (scalar tensors).

    Returns:
        ``gamma`` in ``[0, 1]`` (a scalar tensor); 0.5 when ``v1 = v2``.
    """
    denom = m11 + m22 - 2 * m12  # ||v1 - v2||^2 >= 0
    if float(denom) <= 1e-12 * max(float(m11 + m22), 1e-30):
        return torch.full_like(m11, 0.5)
    return ((m22 - m12) / denom).clamp(0.0, 1.0)


def _check_gram(gram: Tensor) -> int:
    if gram.ndim != 2 or gram.shape[0] != gram.shape[1] or gram.shape[0] < 1:
        raise ValueError(f"gram must be a square [T, T] matrix with T >= 1, got "
                         f"{tuple(gram.shape)}")
    if not bool(torch.isfinite(gram).all()):
        raise ValueError("gram must be finite (a task gradient holds NaN or inf)")
    return gram.shape[0]


def min_norm_weights(gram: Tensor, *, max_iter: int = 250, tol: float = 1e-6) -> Tensor:
    """Weights ``alpha`` on the simplex minimising ``alpha^T gram alpha``.

    Args:
        gram: ``[T, T]`` Gram matrix of the task gradients.
        max_iter: Frank-Wolfe iterations (T > 2 only; Sener & Koltun use 250).
        tol: stop when ``alpha`` moves less than this (L1) in one iteration.

    Returns:
        ``[T]`` non-negative weights summing to 1 (float64).
    """
    n = _check_gram(gram)
    check_positive_int("max_iter", max_iter)
    m = gram.detach().double().cpu()  # [T, T]
    if n == 1:
        return torch.ones(1, dtype=torch.float64)
    if n == 2:
        gamma = min_norm_two(m[0, 0], m[0, 1], m[1, 1])
        return torch.stack([gamma, 1 - gamma])
    alpha = _best_pair(m)
    for _ in range(max_iter):
        m_alpha = m @ alpha  # [T], <g_k, sum_t alpha_t g_t>
        k = int(torch.argmin(m_alpha))
        # line search between v1 = e_k (g_k) and v2 = current point
        gamma = min_norm_two(m[k, k], m_alpha[k], alpha @ m_alpha)
        new = (1 - gamma) * alpha
        new[k] += gamma
        moved = float((new - alpha).abs().sum())
        alpha = new
        if moved < tol:
            break
    return alpha


def _best_pair(m: Tensor) -> Tensor:
    """Start from the best two-task solution over all pairs (as in the paper's code)."""
    n = m.shape[0]
    best, best_value = torch.full((n,), 1.0 / n, dtype=m.dtype), float("inf")
    for i in range(n):
        for j in range(i + 1, n):
            gamma = min_norm_two(m[i, i], m[i, j], m[j, j])
            value = float(gamma**2 * m[i, i] + 2 * gamma * (1 - gamma) * m[i, j]
                          + (1 - gamma) ** 2 * m[j, j])
            if value < best_value:
                best_value = value
                best = torch.zeros(n, dtype=m.dtype)
                best[i], best[j] = gamma, 1 - gamma
    return best
