"""The inner optimisers and inner_adapt's argument handling (frozen weights, bad rates)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from companion.meta import inner_adapt
from companion.meta.inner import AdamMoments, InnerAdam, InnerSGD


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).double()


def _data():
    g = torch.Generator().manual_seed(1)
    return (torch.randn(8, 3, generator=g, dtype=torch.float64),
            torch.randn(8, 1, generator=g, dtype=torch.float64))


def test_sgd_step_by_hand():
    params = {"w": torch.tensor([1.0, -2.0])}
    grads = {"w": torch.tensor([0.5, 0.5])}
    new, state = InnerSGD(0.1).step(params, grads, None)
    torch.testing.assert_close(new["w"], torch.tensor([0.95, -2.05]))
    assert state is None


def test_adam_first_step_is_a_signed_step_of_lr():
    # with zero moments, the bias-corrected first step is lr * g / (|g| + eps) ~ lr * sign(g)
    opt = InnerAdam(0.01, betas=(0.9, 0.999), eps=0.0)
    params = {"w": torch.tensor([1.0, 1.0])}
    new, state = opt.step(params, {"w": torch.tensor([3.0, -0.2])}, opt.init(params))
    torch.testing.assert_close(new["w"], torch.tensor([0.99, 1.01]))
    assert isinstance(state, AdamMoments) and state.t == 1


def test_inner_adapt_matches_manual_sgd_and_accepts_an_optimizer_object():
    model, (x, y) = _model(), _data()
    params = dict(model.named_parameters())
    fast = inner_adapt(model, params, x, y, loss_fn=F.mse_loss, steps=2, lr=0.1)
    manual = {k: v.detach().clone().requires_grad_() for k, v in params.items()}
    for _ in range(2):
        loss = F.mse_loss(torch.func.functional_call(model, manual, (x,)), y)
        grads = torch.autograd.grad(loss, list(manual.values()))
        manual = {k: (v - 0.1 * g).detach().requires_grad_()
                  for (k, v), g in zip(manual.items(), grads, strict=True)}
    for k in params:
        torch.testing.assert_close(fast[k], manual[k])
    again = inner_adapt(model, params, x, y, loss_fn=F.mse_loss, steps=2, optimizer=InnerSGD(0.1))
    for k in params:
        torch.testing.assert_close(again[k], fast[k])


def test_frozen_parameters_are_not_adapted():
    model, (x, y) = _model(), _data()
    model[0].weight.requires_grad_(False)
    params = dict(model.named_parameters())
    fast = inner_adapt(model, params, x, y, loss_fn=F.mse_loss, steps=3, lr=0.5)
    assert fast["0.weight"] is params["0.weight"]  # untouched
    assert not torch.equal(fast["0.bias"], params["0.bias"])  # the others move


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"lr": -0.1}, "lr"),
    ({"lr": 0.0}, "lr"),
    ({"lr": float("nan")}, "lr"),
    ({"lr": 0.1, "steps": -1}, "steps"),
    ({"lr": 0.1, "steps": 1.5}, "steps"),
    ({"lr": 0.1, "optimizer": "rmsprop"}, "optimizer"),
    ({}, "lr is required"),
])
def test_bad_arguments_are_named(kwargs, name):
    model, (x, y) = _model(), _data()
    args = {"steps": 1, **kwargs}
    with pytest.raises(ValueError, match=name):
        inner_adapt(model, dict(model.named_parameters()), x, y, loss_fn=F.mse_loss, **args)


def test_support_count_mismatch_is_named():
    model, (x, y) = _model(), _data()
    with pytest.raises(ValueError, match="support_x has 8 examples but support_y has 7"):
        inner_adapt(model, dict(model.named_parameters()), x, y[:7], loss_fn=F.mse_loss,
                    steps=1, lr=0.1)


def test_adam_refused_for_second_order():
    model, (x, y) = _model(), _data()
    with pytest.raises(ValueError, match="first_order=True"):
        inner_adapt(model, dict(model.named_parameters()), x, y, loss_fn=F.mse_loss,
                    steps=1, lr=0.1, optimizer="adam")
    with pytest.raises(ValueError, match="betas"):
        InnerAdam(0.1, betas=(1.0, 0.9))
