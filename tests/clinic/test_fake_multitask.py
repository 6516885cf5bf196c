"""A single-output model on one data set is not multi-task learning."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion.clinic import fake_multitask as clinic
from companion.multitask import HardSharing

X = torch.randn(32, 3, generator=torch.Generator().manual_seed(0))
TASKS = {"a": (X, X @ torch.tensor([[1.0], [2.0], [0.0]])),
         "b": (X, X @ torch.tensor([[0.0], [-1.0], [3.0]]))}  # different targets, same inputs


pytestmark = pytest.mark.usefixtures("torch_seed_0")  # module initialisation


def _mistaken() -> nn.Module:
    model = clinic.MistakenMultiTaskModel(3, ("a", "b"))
    clinic.mistaken_multitask_fit(model, TASKS, steps=150, lr=0.1)
    return model


def _corrected() -> nn.Module:
    model = HardSharing(nn.Linear(3, 4), {"a": nn.Linear(4, 1), "b": nn.Linear(4, 1)})
    clinic.correct_multitask_fit(model, TASKS, steps=150, lr=0.1)
    return model


@pytest.mark.parametrize("build, is_right", [
    pytest.param(_corrected, True, marks=pytest.mark.slow),  # 150 Adam steps (seconds when loaded)
    (_mistaken, False)])
def test_every_task_is_learned(build, is_right):
    losses = clinic.task_losses(build(), TASKS)
    assert (max(losses.values()) < 0.05) is is_right


def test_the_mistaken_model_ignores_the_task():
    out = _mistaken()(X)
    assert torch.equal(out["a"], out["b"])
    losses = clinic.task_losses(_mistaken(), TASKS)
    assert losses["a"] < 0.05 < 1.0 < losses["b"]  # task b was never seen
