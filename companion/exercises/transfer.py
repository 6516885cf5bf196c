"""Checks for the exercises of the transfer-learning chapter (the proxy A-distance, a density
ratio by hand, DANN's warm-up schedule, the L2-SP gradient).

Chapter: Transfer learning, Exercises 1 to 4.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from companion.exercises._check import confirm, require, require_close

__all__ = ["check_l2sp_gradient", "check_proxy_a_distance", "check_warmup_progress",
           "check_weight_at_zero"]


def check_proxy_a_distance(distance: float, *, error: float = 0.1) -> None:
    """Exercise 1: the proxy A-distance of a domain classifier with test ``error``.

    Raises:
        ValueError: ``error`` is not in ``[0, 1]``.
        AssertionError: a wrong answer, with a hint.
    """
    if not 0 <= error <= 1:
        raise ValueError(f"error must be in [0, 1], got {error!r}")
    require_close(distance, 2 * (1 - 2 * error), name="the proxy A-distance",
                  hint="It is 2 (1 - 2 error): 2 for separable domains, 0 at chance.")
    confirm(f"an error of {error:.0%} gives d_A = {2 * (1 - 2 * error):.2f}.")


def check_weight_at_zero(weight: float) -> None:
    """Exercise 2: ``p_T(0) / p_S(0)`` for ``p_S = N(0.5, 0.5^2)``, ``p_T = N(0, 0.3^2)``.

    Raises:
        AssertionError: a wrong answer, with a hint.
    """
    normal = torch.distributions.Normal
    expected = math.exp(normal(0.0, 0.3).log_prob(torch.tensor(0.0)).item()
                        - normal(0.5, 0.5).log_prob(torch.tensor(0.0)).item())
    require_close(weight, expected, name="the weight at x = 0",
                  hint="Divide the target density by the source density; the standard "
                       "deviations enter both the normalising constants and the exponents.")
    confirm(f"w(0) = (0.5 / 0.3) e^0.5 = {expected:.3f}.")


def check_warmup_progress(progress: float, *, fraction: float = 0.9,
                          gamma: float = 10.0) -> None:
    """Exercise 3: the training progress ``p`` at which ``2 / (1 + exp(-gamma p)) - 1``
    reaches ``fraction``.

    Raises:
        ValueError: ``fraction`` not in ``(0, 1)`` or ``gamma <= 0``.
        AssertionError: a wrong answer, with a hint.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0, got {gamma!r}")
    expected = math.log((1 + fraction) / (1 - fraction)) / gamma
    require_close(progress, expected, name="the progress p",
                  hint="Solve 1 + exp(-gamma p) = 2 / (1 + fraction) for p.")
    confirm(f"lambda_p reaches {fraction:.0%} of its final value at p = {expected:.4f}.")


def check_l2sp_gradient(gradient: Callable[[torch.Tensor, torch.Tensor, float],
                                           torch.Tensor]) -> None:
    """Exercise 4: your ``gradient(w, w0, alpha)`` of ``(alpha / 2) ||w - w0||^2``, compared
    with autograd on random tensors.

    Raises:
        AssertionError: a wrong gradient, with a hint.
    """
    g = torch.Generator().manual_seed(4)
    w = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    w0 = torch.randn(3, 5, generator=g, dtype=torch.float64)
    alpha = 0.3
    (0.5 * alpha * (w - w0).pow(2).sum()).backward()
    answer = torch.as_tensor(gradient(w.detach(), w0, alpha), dtype=torch.float64)
    require(answer.shape == w.shape, f"expected a gradient of shape {tuple(w.shape)}, got "
                                     f"{tuple(answer.shape)}.")
    require(torch.allclose(answer, w.grad, atol=1e-12),  # type: ignore[arg-type]
            "not the gradient of (alpha/2)||w - w0||^2: differentiate the square; the "
            "pull is towards w0, not towards 0.")
    confirm("alpha (w - w0): L2-SP pulls towards the pre-trained weights, weight decay "
            "towards zero.")
