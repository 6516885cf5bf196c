"""Checks for the exercises of the MAML chapter (the first-order gradient of the worked
example, a Meta-SGD step, the meta-gradient of two inner steps, stable step sizes).

Chapter: MAML, Exercises 1, 2, 3 and 5.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from companion.exercises._check import confirm, require, require_close

__all__ = [
    "WORKED_EXAMPLE",
    "check_first_order_gradient",
    "check_meta_sgd_step",
    "check_stable_step_size",
    "check_two_step_meta_gradient",
]

# The chapter's worked example: support loss a/2 (theta - u)^2, query loss b/2 (phi - v)^2,
# k inner steps of size alpha from theta.
WORKED_EXAMPLE = {"a": 4.0, "b": 1.0, "u": 1.0, "v": -2.0, "alpha": 0.1, "k": 3, "theta": 0.5}


def _worked_example_gradients() -> tuple[float, float]:
    """(first-order, exact) meta-gradients of the worked example, by its closed form."""
    e = WORKED_EXAMPLE
    factor = (1 - e["alpha"] * e["a"]) ** int(e["k"])
    phi = e["u"] + factor * (e["theta"] - e["u"])
    first_order = e["b"] * (phi - e["v"])
    return first_order, factor * first_order


def check_first_order_gradient(answer: float) -> None:
    """Exercise 1: first-order MAML's meta-gradient in the chapter's worked example.

    Args:
        answer: your value of the first-order meta-gradient at ``theta = 0.5``.

    Raises:
        AssertionError: a wrong answer, with a hint.
    """
    first_order, exact = _worked_example_gradients()
    require(abs(float(answer) - exact) > 1e-6 * abs(exact),
            f"{answer} is the exact (second-order) meta-gradient. First-order MAML drops the "
            f"factors (1 - alpha a): take the query gradient b (phi - v) at the adapted phi.")
    require_close(answer, first_order, name="first-order meta-gradient",
                  hint="Run the three inner steps phi <- phi - alpha a (phi - u) from theta = "
                       "0.5, then take the query gradient b (phi - v).")
    confirm(f"{first_order:.4f}; the exact meta-gradient is {exact:.4f}, 0.216 times smaller.")


Params = Mapping[str, torch.Tensor]


def check_meta_sgd_step(meta_sgd_step: Callable[[Params, Params, Params], Params]) -> None:
    """Exercise 2: your ``meta_sgd_step(params, grads, lrs)`` against the Meta-SGD update
    ``params[k] - lrs[k] * grads[k]`` (one learned step size per weight).

    Args:
        meta_sgd_step: your function.

    Raises:
        AssertionError: a wrong result, with a hint.
    """
    g = torch.Generator().manual_seed(0)
    shapes = {"weight": (3, 4), "bias": (3,)}
    params, grads, lrs = ({k: torch.randn(s, generator=g) for k, s in shapes.items()}
                          for _ in range(3))
    lrs = {k: v.abs() for k, v in lrs.items()}
    result = meta_sgd_step(params, grads, lrs)
    require(set(result) == set(params), f"the result must have the keys {sorted(params)}.")
    for k in params:
        expected = params[k] - lrs[k] * grads[k]
        require(tuple(result[k].shape) == tuple(expected.shape),
                f"{k}: shape {tuple(result[k].shape)}, expected {tuple(expected.shape)}.")
        require(torch.allclose(result[k], expected),
                f"{k}: wrong values. Meta-SGD multiplies each gradient element by its own step "
                f"size (elementwise), then subtracts.")
    confirm("your Meta-SGD step matches params - lrs * grads, elementwise.")


def _two_step_reference(theta: torch.Tensor, x_s: torch.Tensor, y_s: torch.Tensor,
                        x_q: torch.Tensor, y_q: torch.Tensor, alpha: float) -> torch.Tensor:
    """Meta-gradient of the query MSE after two gradient steps on the support MSE, for the
    linear model ``x @ theta``, by back-propagating through the steps."""
    t = theta.detach().clone().requires_grad_()
    phi = t
    for _ in range(2):
        (grad,) = torch.autograd.grad(((x_s @ phi - y_s) ** 2).mean(), phi, create_graph=True)
        phi = phi - alpha * grad
    (meta_grad,) = torch.autograd.grad(((x_q @ phi - y_q) ** 2).mean(), t)
    return meta_grad


def check_two_step_meta_gradient(
        meta_gradient: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                 torch.Tensor, float], torch.Tensor]) -> None:
    """Exercise 3: your closed form of the meta-gradient for ``k = 2`` inner steps.

    The model is linear without bias, ``y = x @ theta``; the support and query losses are
    mean squared errors; two gradient steps of size ``alpha`` on the support loss. Your
    function gets ``(theta [d], x_s [n, d], y_s [n], x_q [m, d], y_q [m], alpha)`` (float64)
    and returns the meta-gradient ``[d]``.

    Args:
        meta_gradient: your function.

    Raises:
        AssertionError: a wrong result, with a hint.
    """
    g = torch.Generator().manual_seed(1)
    for d, n, m, alpha in ((3, 5, 7, 0.1), (4, 6, 2, 0.05)):
        theta = torch.randn(d, generator=g, dtype=torch.float64)
        x_s, x_q = (torch.randn(k, d, generator=g, dtype=torch.float64) for k in (n, m))
        y_s, y_q = (torch.randn(k, generator=g, dtype=torch.float64) for k in (n, m))
        expected = _two_step_reference(theta, x_s, y_s, x_q, y_q, alpha)
        result = torch.as_tensor(meta_gradient(theta, x_s, y_s, x_q, y_q, alpha),
                                 dtype=torch.float64)
        require(tuple(result.shape) == (d,), f"expected a tensor of shape ({d},), got "
                                             f"{tuple(result.shape)}.")
        require(torch.allclose(result, expected, rtol=1e-6, atol=1e-9),
                "wrong values. With H = 2/n x_s^T x_s (constant), the meta-gradient is "
                "(I - alpha H)^2 times the query gradient 2/m x_q^T (x_q phi - y_q) at phi "
                "after two steps.")
    confirm("your closed form matches back-propagation through two inner steps.")


def check_stable_step_size(largest_stable_step: Callable[[float], float]) -> None:
    """Exercise 5: gradient descent on ``a/2 x^2`` converges for step sizes below a
    threshold that depends on the curvature ``a``. Your function returns that threshold.

    Args:
        largest_stable_step: your function of the curvature ``a > 0``.

    Raises:
        AssertionError: a wrong result, with a hint.
    """
    for a in (0.5, 4.0, 120.0):
        require_close(largest_stable_step(a), 2.0 / a, name=f"threshold for a = {a}",
                      hint="One step multiplies x by (1 - step * a); when does |1 - step * a| "
                           "exceed 1?")
    confirm("steps above 2 / a diverge: the largest curvature a task's support loss has sets "
            "the largest safe step size.")
