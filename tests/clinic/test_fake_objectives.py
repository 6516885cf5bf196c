"""Objectives that are not what their names say: no adaptation, nothing shared, no source."""

from __future__ import annotations

import pytest
import torch

from companion.clinic import fake_objectives as clinic

G = torch.Generator().manual_seed(0)


def _data(n: int = 8, d: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.randn(n, d, generator=G, dtype=torch.float64),
            torch.randn(n, 1, generator=G, dtype=torch.float64))


TASKS = [(*_data(), *_data()) for _ in range(3)]  # equal query sizes
W = torch.tensor([[0.3], [-0.2], [0.5]], dtype=torch.float64)


def _meta_gradient(objective) -> torch.Tensor:
    w = W.clone().requires_grad_()
    (g,) = torch.autograd.grad(objective(w, TASKS), w)
    return g


def _joint_gradient() -> torch.Tensor:
    return _meta_gradient(clinic.joint_objective)


@pytest.mark.parametrize("objective, is_right", [
    (lambda w, t: clinic.correct_meta_objective(w, t, inner_lr=0.1), True),
    (clinic.mistaken_meta_objective, False)])
def test_meta_objective_differs_from_joint_training(objective, is_right):
    same = torch.allclose(_meta_gradient(objective), _joint_gradient())
    assert (not same) is is_right


def _shares_parameters(losses_fn, params) -> bool:
    """Some parameter gets a non-zero gradient from task a's loss and from task b's loss."""
    tasks = {"a": _data(), "b": _data()}
    losses = losses_fn(params, tasks)
    names = list(params)
    grads = {t: torch.autograd.grad(losses[t], [params[n] for n in names], allow_unused=True)
             for t in tasks}
    return any(ga is not None and gb is not None and ga.abs().sum() > 0 and gb.abs().sum() > 0
               for ga, gb in zip(grads["a"], grads["b"], strict=True))


def test_multitask_objective_shares_parameters():
    separate = {t: torch.randn(3, 1, generator=G, dtype=torch.float64).requires_grad_()
                for t in ("a", "b")}
    shared = {"trunk": torch.randn(3, 4, generator=G, dtype=torch.float64).requires_grad_(),
              **{t: torch.randn(4, 1, generator=G, dtype=torch.float64).requires_grad_()
                 for t in ("a", "b")}}
    assert _shares_parameters(clinic.correct_multitask_losses, shared)
    assert not _shares_parameters(clinic.mistaken_multitask_losses, separate)
    # the mistaken sum: d L_a / d theta_b is zero (here: not even connected)
    tasks = {"a": _data(), "b": _data()}
    loss_a = clinic.mistaken_multitask_losses(separate, tasks)["a"]
    assert torch.autograd.grad(loss_a, separate["b"], allow_unused=True)[0] is None


@pytest.mark.parametrize("objective, is_right", [(clinic.correct_transfer_objective, True),
                                                 (clinic.mistaken_transfer_objective, False)])
def test_transfer_objective_depends_on_the_source(objective, is_right):
    target, source, other_source = _data(), _data(), _data()
    w = W.clone().requires_grad_()
    value = objective(w, source, target)
    changed = objective(w, other_source, target)
    (g1,) = torch.autograd.grad(value, w)
    (g2,) = torch.autograd.grad(changed, w)
    depends = not torch.equal(value, changed) and not torch.equal(g1, g2)
    assert depends is is_right
