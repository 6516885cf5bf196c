"""The MAML chapter's exercise checks: right answers pass, wrong ones fail."""

import pytest
import torch

from companion.exercises import maml


def test_first_order_gradient(capsys):
    # by hand: phi = 1 + 0.6^3 (0.5 - 1) = 0.892; b (phi - v) = 2.892
    maml.check_first_order_gradient(2.892)
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="exact"):
        maml.check_first_order_gradient(0.216 * 2.892)  # the second-order one
    with pytest.raises(AssertionError, match="not right"):
        maml.check_first_order_gradient(3.0)


def test_meta_sgd_step(capsys):
    maml.check_meta_sgd_step(lambda p, g, lr: {k: p[k] - lr[k] * g[k] for k in p})
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="elementwise"):
        maml.check_meta_sgd_step(lambda p, g, lr: {k: p[k] - lr[k].mean() * g[k] for k in p})
    with pytest.raises(AssertionError, match="keys"):
        maml.check_meta_sgd_step(lambda p, g, lr: {"weight": p["weight"]})


def _closed_form(theta, x_s, y_s, x_q, y_q, alpha):
    """An independent solution: constant Hessian H = 2/n X^T X, gradients by hand."""
    n, m = len(y_s), len(y_q)
    h = 2 / n * x_s.T @ x_s
    phi = theta
    for _ in range(2):
        phi = phi - alpha * 2 / n * x_s.T @ (x_s @ phi - y_s)
    factor = torch.eye(len(theta), dtype=theta.dtype) - alpha * h
    return factor @ factor @ (2 / m * x_q.T @ (x_q @ phi - y_q))


def _first_order(theta, x_s, y_s, x_q, y_q, alpha):
    n, m = len(y_s), len(y_q)
    phi = theta
    for _ in range(2):
        phi = phi - alpha * 2 / n * x_s.T @ (x_s @ phi - y_s)
    return 2 / m * x_q.T @ (x_q @ phi - y_q)


def test_two_step_meta_gradient(capsys):
    maml.check_two_step_meta_gradient(_closed_form)
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="wrong values"):
        maml.check_two_step_meta_gradient(_first_order)  # drops (I - alpha H)^2


def test_stable_step_size(capsys):
    maml.check_stable_step_size(lambda a: 2 / a)
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="exceed 1"):
        maml.check_stable_step_size(lambda a: 1 / a)
