"""Per-task gradients as dicts: equal to separate backward passes; combining and writing back."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from companion.multitask import (
    HardSharing,
    combine_gradients,
    gradient_dot,
    gradient_gram,
    task_gradients,
    write_gradients,
)
from tests.multitask._helpers import randn, reinit


def _model():
    return reinit(HardSharing(nn.Sequential(nn.Linear(5, 4), nn.Tanh()),
                              {"a": nn.Linear(4, 2), "b": nn.Linear(4, 1)}))


def _losses(model):
    out = model(randn(7, 5))
    return {"a": nn.functional.cross_entropy(out["a"], torch.tensor([0, 1, 1, 0, 1, 0, 0])),
            "b": out["b"].pow(2).mean()}


def test_task_gradients_equal_separate_backward_passes():
    model = _model()
    grads = task_gradients(_losses(model), model.shared_parameters())
    for task in ("a", "b"):
        model.zero_grad()
        _losses(model)[task].backward()
        for name, p in model.shared_parameters().items():
            torch.testing.assert_close(grads[task][name], p.grad)
    assert set(grads["a"]) == {"trunk.0.weight", "trunk.0.bias"}


def test_unused_parameter_gets_zeros_and_graph_is_freed_when_asked():
    w, v = randn(3, seed=1).requires_grad_(), randn(3, seed=2).requires_grad_()
    losses = {"a": (w * 2).sum(), "b": (w * v).sum()}
    grads = task_gradients(losses, {"w": w, "v": v}, retain_graph=False)
    torch.testing.assert_close(grads["a"]["v"], torch.zeros(3))
    torch.testing.assert_close(grads["a"]["w"], torch.full((3,), 2.0))
    torch.testing.assert_close(grads["b"]["v"], w.detach())
    with pytest.raises(RuntimeError):
        losses["b"].backward()  # the graph was freed after the last task


def test_gram_combine_and_write():
    g = {"a": {"p": torch.tensor([1.0, 2.0]), "q": torch.tensor(3.0)},
         "b": {"p": torch.tensor([-1.0, 0.5]), "q": torch.tensor(1.0)}}
    assert gradient_dot(g["a"], g["b"]).item() == pytest.approx(-1 + 1 + 3)
    torch.testing.assert_close(gradient_gram(g), torch.tensor([[14.0, 3.0], [3.0, 2.25]]))
    combined = combine_gradients(g, {"a": 2.0, "b": torch.tensor(-1.0)})
    torch.testing.assert_close(combined["p"], torch.tensor([3.0, 3.5]))
    torch.testing.assert_close(combined["q"], torch.tensor(5.0))
    p = nn.Parameter(torch.zeros(2))
    q = nn.Parameter(torch.zeros(()))
    write_gradients({"p": p, "q": q}, combined)
    write_gradients({"p": p, "q": q}, combined)  # accumulates
    torch.testing.assert_close(p.grad, torch.tensor([6.0, 7.0]))
    write_gradients({"p": p}, {"p": torch.ones(2)}, accumulate=False)
    torch.testing.assert_close(p.grad, torch.ones(2))


def test_bad_input_names_the_argument():
    w = randn(2).requires_grad_()
    with pytest.raises(ValueError, match="losses"):
        task_gradients({}, {"w": w})
    with pytest.raises(ValueError, match=r"losses\['a'\] is not finite"):
        task_gradients({"a": w.sum() * math.inf}, {"w": w})
    with pytest.raises(ValueError, match=r"losses\['a'\] is not finite"):
        task_gradients({"a": w.sum() * math.nan}, {"w": w})
    with pytest.raises(ValueError, match="params"):
        task_gradients({"a": w.sum()}, {})
    with pytest.raises(ValueError, match="losses"):
        task_gradients([w.sum()], {"w": w})  # type: ignore[arg-type]
    g = {"a": {"w": torch.ones(2)}, "b": {"w": torch.ones(2)}}
    with pytest.raises(ValueError, match="weights"):
        combine_gradients(g, {"a": 1.0})
    with pytest.raises(ValueError, match="weights"):
        combine_gradients(g, {"a": 1.0, "b": 1.0, "c": 1.0})
    with pytest.raises(ValueError, match="weights"):
        combine_gradients(g, {"a": 1.0, "b": math.nan})
    with pytest.raises(ValueError, match="grads"):
        write_gradients({"w": w}, {"v": torch.ones(2)})
    with pytest.raises(ValueError, match="shape"):
        write_gradients({"w": w}, {"w": torch.ones(3)})
