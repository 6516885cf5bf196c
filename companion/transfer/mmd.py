"""Maximum mean discrepancy (MMD) with a multi-kernel Gaussian, the alignment loss of DAN.

For a kernel ``k`` the squared MMD between distributions ``P`` (source) and ``Q`` (target) is

    MMD^2 = E k(x, x') + E k(y, y') - 2 E k(x, y),     x, x' ~ P,  y, y' ~ Q,

zero iff ``P = Q`` for a characteristic kernel such as the Gaussian. DAN uses a convex
combination of Gaussian kernels with several length scales ``l_u``:

    k(x, y) = sum_u beta_u exp(-||x - y||^2 / (2 l_u^2)),    beta_u >= 0, sum_u beta_u = 1.

Estimators from ``n`` source and ``m`` target samples:

* unbiased (U-statistic): means over ``i != j`` in the two within-domain terms, all pairs in
  the cross term; ``O((n + m)^2)``; can be slightly negative when ``P = Q``;
* linear-time (Gretton et al., 2012, Lemma 14; used by DAN): with ``n = m`` paired in
  quadruples ``(x_{2i-1}, x_{2i}, y_{2i-1}, y_{2i})``, the mean of
  ``k(x,x') + k(y,y') - k(x,y') - k(x',y)``; unbiased, ``O(n)``, noisier.

When no length scales are given, they are ``multipliers * median`` pairwise distance of the
pooled batch (the median heuristic, detached from the graph).

Chapter: Transfer learning (feature-based transfer).
References: :cite:t:`gretton2012kernel`, :cite:t:`long2015learning`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from companion.transfer._checks import check_pair

__all__ = ["MultiKernelMMD", "gaussian_kernel", "median_lengthscale", "mmd2_linear",
           "mmd2_unbiased"]

DEFAULT_MULTIPLIERS = (0.25, 0.5, 1.0, 2.0, 4.0)


def _check_lengthscales(lengthscales: Sequence[float], weights: Sequence[float] | None
                        ) -> tuple[list[float], list[float]]:
    scales = [float(v) for v in lengthscales]
    if not scales or any(not v > 0 or v == float("inf") for v in scales):
        raise ValueError(f"lengthscales must be a non-empty list of positive finite numbers, "
                         f"got {lengthscales!r}")
    if weights is None:
        return scales, [1.0 / len(scales)] * len(scales)
    beta = [float(w) for w in weights]
    if len(beta) != len(scales) or any(not w >= 0 for w in beta) or abs(sum(beta) - 1) > 1e-6:
        raise ValueError(f"weights must be {len(scales)} non-negative numbers summing to 1, "
                         f"got {weights!r}")
    return scales, beta


def gaussian_kernel(x: Tensor, y: Tensor, lengthscales: Sequence[float],
                    weights: Sequence[float] | None = None) -> Tensor:
    """Multi-kernel Gaussian Gram matrix ``sum_u beta_u exp(-||x_i - y_j||^2 / (2 l_u^2))``.

    Args:
        x: ``[n, d]``.
        y: ``[m, d]``.
        lengthscales: ``l_u > 0``.
        weights: ``beta_u`` (non-negative, summing to 1); uniform when None.

    Returns:
        ``[n, m]``.
    """
    scales, beta = _check_lengthscales(lengthscales, weights)
    sq = (x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1) - 2 * x @ y.T).clamp_min(0)  # [n, m]
    return _mix(sq, scales, beta)


def _mix(sq: Tensor, scales: list[float], beta: list[float]) -> Tensor:
    """``sum_u beta_u exp(-sq / (2 l_u^2))`` for squared distances ``sq`` of any shape."""
    out = torch.zeros_like(sq)
    for scale, b in zip(scales, beta, strict=True):
        out = out + b * torch.exp(-sq / (2 * scale * scale))
    return out


def median_lengthscale(source: Tensor, target: Tensor) -> float:
    """Median pairwise distance of the pooled batch ``[n + m, d]`` (no gradient)."""
    with torch.no_grad():
        z = torch.cat([source, target])  # [n + m, d]
        dist = torch.pdist(z)  # [(n + m)(n + m - 1) / 2]
        median = dist.median().item() if dist.numel() else 0.0
    return median if median > 0 else 1.0  # all points equal: any scale gives MMD = 0


def _scales(source: Tensor, target: Tensor, lengthscales: Sequence[float] | None,
            multipliers: Sequence[float]) -> Sequence[float]:
    if lengthscales is not None:
        return lengthscales
    median = median_lengthscale(source, target)
    return [m * median for m in multipliers]


def mmd2_unbiased(source: Tensor, target: Tensor, *,
                  lengthscales: Sequence[float] | None = None,
                  weights: Sequence[float] | None = None,
                  multipliers: Sequence[float] = DEFAULT_MULTIPLIERS) -> Tensor:
    """Unbiased estimate of the squared MMD between two samples.

    Args:
        source: ``[n, d]``, ``n >= 2``.
        target: ``[m, d]``, ``m >= 2``.
        lengthscales: kernel length scales; None -> ``multipliers * median`` distance.
        weights: kernel weights ``beta_u`` (uniform when None).
        multipliers: used only when ``lengthscales`` is None.

    Returns:
        Scalar ``mean_{i!=j} k(x_i,x_j) + mean_{i!=j} k(y_i,y_j) - 2 mean_{i,j} k(x_i,y_j)``.
    """
    source, target = check_pair(source, target, min_rows=2)
    scales = _scales(source, target, lengthscales, multipliers)
    n, m = source.shape[0], target.shape[0]
    k_ss = gaussian_kernel(source, source, scales, weights)  # [n, n]
    k_tt = gaussian_kernel(target, target, scales, weights)  # [m, m]
    k_st = gaussian_kernel(source, target, scales, weights)  # [n, m]
    ss = (k_ss.sum() - k_ss.diagonal().sum()) / (n * (n - 1))
    tt = (k_tt.sum() - k_tt.diagonal().sum()) / (m * (m - 1))
    return ss + tt - 2 * k_st.mean()


def mmd2_linear(source: Tensor, target: Tensor, *,
                lengthscales: Sequence[float] | None = None,
                weights: Sequence[float] | None = None,
                multipliers: Sequence[float] = DEFAULT_MULTIPLIERS) -> Tensor:
    """Linear-time unbiased estimate of the squared MMD (DAN's estimator).

    Args:
        source: ``[n, d]``; the first ``2 * floor(min(n, m) / 2)`` rows are used.
        target: ``[m, d]``; idem (at least 2 rows each).
        lengthscales, weights, multipliers: as in :func:`mmd2_unbiased`.

    Returns:
        Scalar mean over quadruples of ``k(x,x') + k(y,y') - k(x,y') - k(x',y)``.
    """
    source, target = check_pair(source, target, min_rows=2)
    scales = _scales(source, target, lengthscales, multipliers)
    half = min(source.shape[0], target.shape[0]) // 2
    x, x2 = source[0:2 * half:2], source[1:2 * half:2]  # [half, d] each
    y, y2 = target[0:2 * half:2], target[1:2 * half:2]  # [half, d] each

    scales_, beta = _check_lengthscales(scales, weights)

    def k(a: Tensor, b: Tensor) -> Tensor:  # kernel of matching rows, [half]
        sq = (a - b).pow(2).sum(1)  # [half]
        return _mix(sq, scales_, beta)

    return (k(x, x2) + k(y, y2) - k(x, y2) - k(x2, y)).mean()


class MultiKernelMMD(nn.Module):
    """The multi-kernel MMD alignment loss of DAN as a module.

    Args:
        lengthscales: fixed ``l_u``; None (default) -> ``multipliers * median`` distance of
            each batch.
        weights: kernel weights ``beta_u`` (uniform when None).
        multipliers: median-heuristic factors.
        estimator: ``"unbiased"`` (quadratic time) or ``"linear"``.

    Shapes:
        source ``[n, d]``, target ``[m, d]`` -> scalar.
    """

    def __init__(self, *, lengthscales: Sequence[float] | None = None,
                 weights: Sequence[float] | None = None,
                 multipliers: Sequence[float] = DEFAULT_MULTIPLIERS,
                 estimator: str = "unbiased") -> None:
        super().__init__()
        if estimator not in ("unbiased", "linear"):
            raise ValueError(f"estimator must be 'unbiased' or 'linear', got {estimator!r}")
        if lengthscales is not None:
            _check_lengthscales(lengthscales, weights)
        else:
            _check_lengthscales(multipliers, weights)
        self.lengthscales = None if lengthscales is None else tuple(lengthscales)
        self.weights = None if weights is None else tuple(weights)
        self.multipliers = tuple(multipliers)
        self.estimator = estimator

    def forward(self, source: Tensor, target: Tensor) -> Tensor:
        fn = mmd2_unbiased if self.estimator == "unbiased" else mmd2_linear
        return fn(source, target, lengthscales=self.lengthscales, weights=self.weights,
                  multipliers=self.multipliers)
