"""Checks for the exercises of the multi-task chapter (PCGrad's projection, MGDA's two-task
weight, the optimum of uncertainty weighting).

Each check computes the right answer with the library (:func:`project_conflicting`,
:func:`min_norm_two`) or in closed form and compares it with yours.

Chapter: Multi-task learning, Exercises 1, 2 and 3.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from companion.exercises._check import confirm, require, require_close
from companion.multitask.min_norm import min_norm_two
from companion.multitask.pcgrad import project_conflicting

__all__ = ["check_mgda_weight", "check_pcgrad_projection", "check_uncertainty_optimum"]


def _vector(value: Sequence[float], name: str) -> torch.Tensor:
    try:
        t = torch.as_tensor(value, dtype=torch.float64).flatten()
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a sequence of numbers, got {value!r}") from err
    if t.numel() == 0 or not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must hold finite numbers, got {value!r}")
    return t


def check_pcgrad_projection(g1_projected: Sequence[float], *,
                            g1: Sequence[float] = (2.0, 0.0),
                            g2: Sequence[float] = (-1.0, 1.0)) -> None:
    """Exercise 1: PCGrad's ``g1`` after projecting away its conflict with ``g2``.

    Args:
        g1_projected: your projected ``g1`` (a sequence of ``len(g1)`` numbers).
        g1, g2: the two task gradients.

    Raises:
        AssertionError: a wrong answer, with a hint.
        ValueError: ``g1_projected`` not numbers, or ``g1`` and ``g2`` of different lengths or
            not finite.
    """
    a, b = _vector(g1, "g1"), _vector(g2, "g2")
    if a.shape != b.shape:
        raise ValueError(f"g1 and g2 must have the same length, got {a.numel()} and {b.numel()}")
    try:
        answer = torch.as_tensor(g1_projected, dtype=torch.float64).flatten()
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(
            f"g1_projected must be a sequence of numbers, got {g1_projected!r}") from err
    require(answer.shape == a.shape, f"expected {a.numel()} numbers, got {answer.numel()}.")
    # Two tasks: the order does not matter for g1, which is projected on g2 only.
    expected = project_conflicting({"1": {"w": a}, "2": {"w": b}},
                                   generator=torch.Generator().manual_seed(0))["1"]["w"]
    conflict = float(a @ b) < 0
    require(torch.allclose(answer, expected, atol=1e-6),
            "not PCGrad's projection. " + (
                "They conflict (g1 . g2 < 0): subtract (g1 . g2) / |g2|^2 * g2 from g1."
                if conflict else "They do not conflict (g1 . g2 >= 0): g1 stays as it is."))
    confirm(f"g1 becomes {expected.tolist()}, orthogonal to g2." if conflict
            else "no conflict: PCGrad leaves g1 unchanged.")


def check_mgda_weight(alpha_1: float, *, g1: Sequence[float] = (1.0, 0.0),
                      g2: Sequence[float] = (0.0, 2.0)) -> None:
    """Exercise 2: the weight of ``g1`` in the minimum-norm point of the segment [g1, g2].

    Args:
        alpha_1: your weight, in ``[0, 1]``.
        g1, g2: the two task gradients.

    Raises:
        AssertionError: a wrong answer, with a hint.
        ValueError: ``g1`` and ``g2`` of different lengths or not finite.
    """
    a, b = _vector(g1, "g1"), _vector(g2, "g2")
    if a.shape != b.shape:
        raise ValueError(f"g1 and g2 must have the same length, got {a.numel()} and {b.numel()}")
    if torch.equal(a, b):  # the segment is one point: every weight in [0, 1] is a minimiser
        value = float(alpha_1)
        require(0.0 <= value <= 1.0, f"alpha_1: got {alpha_1!r}; a weight lies in [0, 1].")
        confirm("g1 = g2, so every weight in [0, 1] gives the same min-norm point.")
        return
    expected = float(min_norm_two(a @ a, a @ b, b @ b))
    require_close(alpha_1, expected, name="alpha_1", rel=1e-4,
                  hint="Minimise |a g1 + (1 - a) g2|^2 over a (a parabola) and clip to [0, 1].")
    confirm(f"alpha_1 = {expected:.4g}; the min-norm direction lowers both losses.")


def check_uncertainty_optimum(variance: float, weight: float, *, loss: float = 0.5) -> None:
    """Exercise 3: the ``sigma^2`` minimising ``loss / (2 sigma^2) + log sigma`` (regression
    form of uncertainty weighting) and the task's weight ``1 / (2 sigma^2)`` there.

    Args:
        variance: your ``sigma^2``.
        weight: your weight.
        loss: the task's (fixed) loss, > 0.

    Raises:
        AssertionError: a wrong answer, with a hint.
        ValueError: ``loss`` not a positive finite number.
    """
    if not isinstance(loss, (int, float)) or not 0 < loss < float("inf"):
        raise ValueError(f"loss must be a positive finite number, got {loss!r}")
    require_close(variance, loss, name="sigma^2", hint="Write s = log sigma^2 and set the "
                  "derivative of 0.5 exp(-s) L + 0.5 s to zero.")
    require_close(weight, 1 / (2 * loss), name="weight", hint="The weight is 1 / (2 sigma^2).")
    confirm(f"sigma^2 = L = {loss:g}: the weighted loss L / (2 sigma^2) is 1/2 for every task.")
