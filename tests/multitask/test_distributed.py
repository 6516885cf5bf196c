"""Gradient methods on several processes: ``training_step`` averages the combined gradients.

Each rank combines the task gradients of its own batch (PCGrad projects, MGDA weighs them per
rank); the step then applies the mean of the ranks' combined gradients, like data-parallel
training of any loss, so the ranks stay identical.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from companion.data import MultiTaskBatch
from companion.multitask import GradientMultiTaskLearner, HardSharing, multitask_learner
from companion.multitask import gradient_learner as gradient_learner_module
from tests.multitask._helpers import randn, reinit
from tests.two_ranks import run_two_ranks

LR = 0.1
WORKER = Path(__file__).with_name("dist_worker.py")


def learner(method: str) -> GradientMultiTaskLearner:
    model = reinit(HardSharing(nn.Sequential(nn.Linear(4, 6), nn.Tanh()),
                               {"a": nn.Linear(6, 3), "b": nn.Linear(6, 3)}), seed=1)
    out = multitask_learner(model, method=method, pcgrad_seed=3)
    assert isinstance(out, GradientMultiTaskLearner)
    return out


def half_batch(rank: int) -> MultiTaskBatch:
    """Rank ``rank``'s 4 of 8 fixed examples (both tasks classification, 3 classes)."""
    rows = slice(4 * rank, 4 * rank + 4)
    x = randn(8, 4, seed=2)[rows]
    return MultiTaskBatch.shared(x, {"a": torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])[rows],
                                     "b": torch.tensor([2, 2, 1, 0, 0, 1, 1, 0])[rows]})


def _step_alone(method: str, rank: int) -> dict[str, torch.Tensor]:
    """One process's parameters after its own step with SGD(lr=1): theta - g_rank."""
    mtl = learner(method)
    mtl.training_step(half_batch(rank), torch.optim.SGD(mtl.parameters(), lr=1.0))
    return {k: v.detach().clone() for k, v in mtl.named_parameters()}


@pytest.mark.parametrize("method", ["pcgrad", "mgda"])
def test_training_step_averages_gradients_over_processes(monkeypatch, method):
    calls = []
    real = gradient_learner_module.all_reduce_gradients

    def spy(parameters):
        params = list(parameters)
        calls.append([p.grad is not None for p in params])
        return real(params)

    monkeypatch.setattr(gradient_learner_module, "all_reduce_gradients", spy)
    mtl = learner(method)
    before = {k: v.detach().clone() for k, v in mtl.named_parameters()}
    mtl.training_step(half_batch(0), torch.optim.SGD(mtl.parameters(), lr=LR))
    assert len(calls) == 1 and all(calls[0])  # called once, after every .grad was written
    assert any(not torch.equal(before[k], v) for k, v in mtl.named_parameters())


@pytest.mark.slow
@pytest.mark.parametrize("method", ["pcgrad", "mgda"])
def test_two_ranks_step_with_the_mean_of_their_combined_gradients(tmp_path, method):
    _run_two_worker(method, tmp_path)
    start = {k: v.detach().clone() for k, v in learner(method).named_parameters()}
    alone = [_step_alone(method, r) for r in (0, 1)]
    got = [torch.load(tmp_path / f"params-rank{r}.pt", weights_only=True) for r in (0, 1)]
    for k, theta in start.items():
        mean_grad = ((theta - alone[0][k]) + (theta - alone[1][k])) / 2  # g_r = theta - step
        expected = theta - LR * mean_grad
        torch.testing.assert_close(got[0][k], expected, rtol=1e-5, atol=1e-6)
        assert torch.equal(got[0][k], got[1][k]), k  # the ranks agree


def _run_two_worker(method: str, out: Path) -> None:
    run_two_ranks(WORKER, method, str(out))


def test_dwa_records_the_losses_averaged_over_processes(monkeypatch):
    """DWA's weights come from its loss history: every rank must record the same losses."""
    from companion.multitask import learner as learner_module

    averaged = []

    def spy(value: torch.Tensor) -> torch.Tensor:
        averaged.append(value)
        return value + 1.0  # stands in for another rank's losses entering the mean

    monkeypatch.setattr(learner_module, "all_reduce_mean", spy)
    model = reinit(HardSharing(nn.Sequential(nn.Linear(4, 6), nn.Tanh()),
                               {"a": nn.Linear(6, 3), "b": nn.Linear(6, 3)}), seed=1)
    dwa = multitask_learner(model, method="dwa")
    _, metrics = dwa.training_loss(half_batch(0))
    assert len(averaged) == 2  # one loss per task
    recorded = dwa.weighting.get_buffer("history")[1]  # the epoch mean (period 1)
    expected = torch.stack([metrics["loss/a"], metrics["loss/b"]]).double() + 1.0
    torch.testing.assert_close(recorded, expected.to(recorded))
