"""Checks for the exercises of the Reptile chapter (k = 1 is joint training, the Taylor
coefficients, equal steepness in the two-dimensional picture).

Chapter: Reptile, Exercises 1, 2 and 3.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from companion.exercises._check import confirm, require, require_close

__all__ = [
    "check_equal_steepness_point",
    "check_joint_training_learning_rate",
    "check_taylor_coefficients",
]

# The task lines of the chapter's two-dimensional picture: n_tau . theta = b_tau.
ANGLES = (0.2, 1.2, 2.2, 2.9)
OFFSETS = (2.5, 2.0, -1.0, -1.5)


def check_joint_training_learning_rate(answer: float, *, outer_lr: float,
                                       inner_lr: float) -> None:
    """Exercise 1: the learning rate of the joint-training SGD step that one Reptile step
    with ``k = 1`` inner SGD step equals.

    Args:
        answer: your learning rate.
        outer_lr: Reptile's outer step size epsilon.
        inner_lr: the inner step size alpha.

    Raises:
        AssertionError: a wrong answer, with a hint.
    """
    require_close(answer, outer_lr * inner_lr, name="learning rate",
                  hint="With k = 1, phi - theta = -alpha g; Reptile moves theta by epsilon "
                       "times that.")
    confirm("epsilon * alpha: with one inner step Reptile is SGD on the average task loss.")


def check_taylor_coefficients(avg_grad: float, avg_grad_inner: float, *, k: int = 3) -> None:
    """Exercise 2: ``E[g_Reptile] = c1 AvgGrad + c2 alpha AvgGradInner + O(alpha^2)`` for
    ``k`` inner steps; give ``c1`` and ``c2`` (with its sign).

    Args:
        avg_grad: your coefficient c1.
        avg_grad_inner: your coefficient c2 (negative if the term is subtracted).
        k: number of inner steps.

    Raises:
        ValueError: ``k`` is smaller than 1.
        AssertionError: a wrong answer, with a hint.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    require_close(avg_grad, k, name="coefficient of AvgGrad",
                  hint="Each of the k steps contributes its gradient at theta once.")
    require_close(avg_grad_inner, -k * (k - 1) / 2, name="coefficient of alpha AvgGradInner",
                  hint="Step j's gradient, expanded around theta, picks up -alpha H_j g_i for "
                       "every earlier step i < j: count the pairs.")
    confirm(f"{k} AvgGrad - {k * (k - 1) // 2} alpha AvgGradInner for k = {k}.")


def check_equal_steepness_point(point: Sequence[float] | torch.Tensor, *,
                                tolerance: float = 0.15) -> None:
    """Exercise 3: where Reptile and joint training end when all four tasks of the picture
    are equally steep.

    Args:
        point: your end point ``(theta_1, theta_2)``.
        tolerance: accepted distance (serial updates circle around the point).

    Raises:
        AssertionError: a wrong answer, with a hint.
    """
    angles = torch.tensor(ANGLES, dtype=torch.float64)
    normals = torch.stack([angles.cos(), angles.sin()], 1)
    offsets = torch.tensor(OFFSETS, dtype=torch.float64)[:, None]
    expected = torch.linalg.lstsq(normals, offsets).solution[:, 0]
    answer = torch.as_tensor(point, dtype=torch.float64).flatten()
    require(answer.shape == (2,), f"give two numbers, got {tuple(answer.shape)}.")
    distance = torch.dist(answer, expected).item()
    require(distance < tolerance,
            f"{answer.tolist()} is {distance:.2f} from the right point. With equal steepness "
            f"the mean loss is the mean squared distance to the lines: both methods aim at "
            f"the least-squares point of n_tau . theta = b_tau.")
    confirm(f"both end near {[round(v, 3) for v in expected.tolist()]}: with equal steepness "
            f"the closest point and the loss minimum coincide.")
