"""MAML through load_state_dict: graph cut, misaligned buffers, steps from the rate, no step."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion.clinic import maml_write_back as clinic

G = torch.Generator().manual_seed(0)
TASK = tuple(torch.randn(shape, generator=G, dtype=torch.float64)
             for shape in ((6, 3), (6, 1), (5, 3), (5, 1)))
LR = 0.3


def _linear() -> nn.Linear:
    model = nn.Linear(3, 1).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.5, -1.0, 0.25]]))
        model.bias.fill_(0.1)
    return model


def _closed_form() -> tuple[torch.Tensor, torch.Tensor]:
    """Second-order meta-gradient of a linear model under MSE, and the first-order one.

    With inputs augmented by a column of ones, L(t) = |X t - y|^2 / n has gradient
    2 X^T (X t - y) / n and Hessian H = 2 X^T X / n, so t' = t - a g_s(t) and
    dL_q(t') / dt = (I - a H_s) g_q(t').
    """
    sx, sy, qx, qy = TASK
    xs, xq = (torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1) for x in (sx, qx))
    theta = torch.tensor([[0.5], [-1.0], [0.25], [0.1]], dtype=torch.float64)
    grad_s = 2 * xs.T @ (xs @ theta - sy) / len(xs)
    adapted = theta - LR * grad_s
    grad_q = 2 * xq.T @ (xq @ adapted - qy) / len(xq)
    hessian = 2 * xs.T @ xs / len(xs)
    return ((torch.eye(4, dtype=torch.float64) - LR * hessian) @ grad_q).flatten(), \
        grad_q.flatten()


def _flat(grads: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([g.flatten() for g in grads])


@pytest.mark.parametrize("version, is_right", [(clinic.correct_meta_gradient, True),
                                               (clinic.mistaken_meta_gradient, False)])
def test_meta_gradient_against_the_second_order_closed_form(version, is_right):
    second, first = _closed_form()
    got = _flat(version(_linear(), TASK, inner_lr=LR))
    assert torch.allclose(got, second) is is_right
    if not is_right:  # the write-back silently computed the first-order gradient instead
        assert torch.allclose(got, first)


def test_write_back_overwrites_the_meta_parameters():
    model, untouched = _linear(), _linear()
    clinic.mistaken_meta_gradient(model, TASK, inner_lr=LR)
    assert not torch.equal(model.weight, untouched.weight)
    fixed = _linear()
    clinic.correct_meta_gradient(fixed, TASK, inner_lr=LR)
    assert torch.equal(fixed.weight, untouched.weight)


@pytest.mark.parametrize("version, is_right", [(clinic.correct_fast_weights, True),
                                               (clinic.mistaken_fast_state, False)])
def test_fast_weights_are_named_after_parameters_not_buffers(version, is_right):
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 3))
    fast = [p.detach() + 1 for p in model.parameters()]
    named = version(model, fast)
    expected = {n: p.detach() + 1 for n, p in model.named_parameters()}
    aligned = named.keys() == expected.keys() and all(
        torch.equal(named[k], v) for k, v in expected.items())
    assert aligned is is_right
    if not is_right:
        assert named["1.running_mean"].shape == (3, 3)  # the last layer's weight
        assert "2.weight" not in named


@pytest.mark.parametrize("version, is_right", [(clinic.correct_steps, True),
                                               (clinic.mistaken_steps, False)])
def test_number_of_inner_steps(version, is_right):
    taken: list[int] = []
    version(lambda: taken.append(1), inner_lr=0.4, inner_steps=5)
    assert (len(taken) == 5) is is_right


@pytest.mark.parametrize("version, is_right", [(clinic.correct_meta_train, True),
                                               (clinic.mistaken_meta_train, False)])
def test_outer_step_is_taken(version, is_right):
    model = _linear()
    history = version(model, [TASK], torch.optim.SGD(model.parameters(), lr=0.05),
                      inner_lr=LR, iterations=5)
    assert (history[-1] < 0.9 * history[0]) is is_right
