"""Kernel mean matching (KMM): importance weights without estimating densities.

Choose weights ``beta`` for the ``n`` source points so that their weighted mean in a kernel
feature space matches the mean of the ``m`` target points (Huang et al., 2007):

    min_beta  (1/2) beta^T K beta - kappa^T beta
    s.t.      0 <= beta_i <= B,    |sum_i beta_i - n| <= n * epsilon,

with ``K_ij = k(x_i, x_j)`` over source points and ``kappa_i = (n / m) sum_j k(x_i, x'_j)``
(source against target). This is ``(n^2 / 2) ||mean_beta phi(x) - mean phi(x')||^2`` up to a
constant. The paper's defaults are ``B = 1000`` and ``epsilon = (sqrt(n) - 1) / sqrt(n)``.

Instead of a QP solver, this quadratic programme is solved by accelerated projected
gradient descent (FISTA) with step ``1 / lambda_max(K)``; the projection onto the box
intersected with the slab is exact: ``clip(v - tau, 0, B)`` with the shift ``tau`` found by
bisection.

Chapter: Transfer learning (instance-based transfer).
Reference: :cite:t:`huang2007correcting`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from companion._checks import check_positive_float, check_positive_int
from companion.transfer._checks import check_pair
from companion.transfer.mmd import gaussian_kernel

__all__ = ["kernel_mean_matching", "project_box_slab"]


def project_box_slab(v: Tensor, *, upper: float, low: float, high: float,
                     iterations: int = 60) -> Tensor:
    """Euclidean projection of ``v`` ``[n]`` onto ``{b : 0 <= b <= upper, low <= sum b <= high}``.

    The projection is ``clip(v - tau, 0, upper)``: ``tau = 0`` if that sum is already in
    ``[low, high]``, else the ``tau`` (found by bisection; the sum decreases in ``tau``) that
    puts the sum on the violated bound.
    """
    if not 0 <= low <= high <= upper * v.numel():
        raise ValueError(f"need 0 <= low <= high <= upper * n, got low={low}, high={high}, "
                         f"upper={upper}, n={v.numel()}")
    clipped = v.clamp(0, upper)
    total = clipped.sum().item()
    if low <= total <= high:
        return clipped
    goal = high if total > high else low
    lo_tau = torch.full((), v.min().item() - upper, dtype=v.dtype, device=v.device)  # sum n*B
    hi_tau = torch.full((), v.max().item(), dtype=v.dtype, device=v.device)  # sum 0
    for _ in range(iterations):  # on tensors: no device synchronisation per halving
        tau = 0.5 * (lo_tau + hi_tau)
        above = (v - tau).clamp(0, upper).sum() > goal
        lo_tau, hi_tau = torch.where(above, tau, lo_tau), torch.where(above, hi_tau, tau)
    return (v - 0.5 * (lo_tau + hi_tau)).clamp(0, upper)


def kernel_mean_matching(source: Tensor, target: Tensor, *, lengthscale: float,
                         bound: float = 1000.0, epsilon: float | None = None,
                         max_iter: int = 2000, tol: float = 1e-7) -> Tensor:
    """KMM weights of the source points.

    Args:
        source: ``[n, d]`` source features.
        target: ``[m, d]`` target features.
        lengthscale: of the Gaussian kernel ``exp(-||x - y||^2 / (2 l^2))`` (> 0).
        bound: ``B``, the largest weight (> 0).
        epsilon: slack of the normalisation constraint; None -> ``(sqrt(n) - 1) / sqrt(n)``.
        max_iter: FISTA iterations (> 0).
        tol: stop when no weight moves by more than ``tol * B`` in an iteration.

    Returns:
        ``[n]`` weights in ``[0, B]``, summing to ``n (1 +- epsilon)``, detached.
    """
    source, target = check_pair(source, target)
    check_positive_float("lengthscale", lengthscale)
    check_positive_float("bound", bound)
    check_positive_int("max_iter", max_iter)
    n, m = source.shape[0], target.shape[0]
    eps = (math.sqrt(n) - 1) / math.sqrt(n) if epsilon is None else epsilon
    if not isinstance(eps, (int, float)) or not 0 <= eps < math.inf:
        raise ValueError(f"epsilon must be a finite number >= 0, got {epsilon!r}")
    low, high = max(0.0, n * (1 - eps)), min(n * bound, n * (1 + eps))
    if low > high:
        raise ValueError(f"bound={bound} is too small: the weights cannot sum to n(1 - eps)")
    with torch.no_grad():
        k = gaussian_kernel(source, source, [lengthscale])  # [n, n]
        kappa = (n / m) * gaussian_kernel(source, target, [lengthscale]).sum(1)  # [n]
        step = 1.0 / torch.linalg.eigvalsh(k)[-1].clamp_min(1e-12).item()
        beta = project_box_slab(torch.ones(n, dtype=source.dtype, device=source.device),
                                upper=bound, low=low, high=high)
        momentum, t = beta.clone(), 1.0
        for _ in range(max_iter):
            grad = k @ momentum - kappa  # [n]
            new = project_box_slab(momentum - step * grad, upper=bound, low=low, high=high)
            t_next = 0.5 * (1 + math.sqrt(1 + 4 * t * t))
            momentum = new + ((t - 1) / t_next) * (new - beta)
            moved = (new - beta).abs().max().item()
            beta, t = new, t_next
            if moved <= tol * bound:
                break
    return beta
