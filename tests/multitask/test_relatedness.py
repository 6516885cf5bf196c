"""Task relatedness: gradient cosine, look-ahead affinity (closed form), transfer-gain matrix."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from companion.data import MultiTaskBatch
from companion.multitask import (
    HardSharing,
    gradient_cosine,
    lookahead_affinity,
    multitask_learner,
    transfer_gain_matrix,
)
from tests.multitask._helpers import randn, reinit


def test_gradient_cosine_by_hand():
    grads = {"a": {"w": torch.tensor([1.0, 0.0]), "v": torch.tensor(0.0)},
             "b": {"w": torch.tensor([1.0, 1.0]), "v": torch.tensor(0.0)},
             "c": {"w": torch.tensor([-2.0, 0.0]), "v": torch.tensor(0.0)},
             "z": {"w": torch.zeros(2), "v": torch.tensor(0.0)}}
    cos = gradient_cosine(grads)
    s = 1 / math.sqrt(2)
    expected = torch.tensor([[1, s, -1, 0], [s, 1, -s, 0], [-1, -s, 1, 0], [0, 0, 0, 0]],
                            dtype=torch.float64)
    torch.testing.assert_close(cos, expected)
    with pytest.raises(ValueError, match="finite"):
        gradient_cosine({"a": {"w": torch.tensor([math.nan])}})


def test_lookahead_affinity_closed_form_on_quadratics():
    """L_j = 0.5 |theta - c_j|^2 + 1: a step on i gives theta' = theta - lr (theta - c_i)."""
    centres = {"a": torch.tensor([1.0, 0.0]), "b": torch.tensor([0.0, 2.0]),
               "c": torch.tensor([-1.0, 0.5])}
    theta = nn.Parameter(torch.tensor([0.3, -0.2]))

    def losses_at(params):
        t = theta if params is None else params["theta"]
        return {k: 0.5 * (t - c).pow(2).sum() + 1 for k, c in centres.items()}

    lr = 0.2
    z = lookahead_affinity(losses_at, {"theta": theta}, lr=lr)
    th = theta.detach()
    for a, i in enumerate(centres):
        stepped = th - lr * (th - centres[i])
        for b, j in enumerate(centres):
            before = 0.5 * (th - centres[j]).pow(2).sum() + 1
            after = 0.5 * (stepped - centres[j]).pow(2).sum() + 1
            assert float(z[a, b]) == pytest.approx(float(1 - after / before), rel=1e-6)
    assert bool((z.diagonal() > 0).all())  # a step on a task lowers its own loss


def test_lookahead_affinity_through_the_learner_is_first_order_in_lr():
    """For a small step, Z[i, j] ~ lr <g_i, g_j> / L_j."""
    model = reinit(HardSharing(nn.Sequential(nn.Linear(3, 4), nn.Tanh()),
                               {"a": nn.Linear(4, 1), "b": nn.Linear(4, 1)}))
    learner = multitask_learner(model, {"a": "regression", "b": "regression"})
    batch = MultiTaskBatch.shared(randn(16, 3), {"a": randn(16, 1, seed=1),
                                                 "b": randn(16, 1, seed=2)})
    lr = 1e-4
    z = lookahead_affinity(lambda p: learner.task_losses(batch, p), model.shared_parameters(),
                           lr=lr)
    grads = learner.task_gradients(batch)
    losses = learner.task_losses(batch)
    for a, i in enumerate(("a", "b")):
        for b, j in enumerate(("a", "b")):
            dot = sum(float((grads[i][n] * grads[j][n]).sum()) for n in grads[i])
            assert float(z[a, b]) == pytest.approx(lr * dot / float(losses[j].detach()),
                                                   rel=2e-2, abs=1e-9)


def test_transfer_gain_matrix():
    alone = {"a": 0.8, "b": 0.6, "c": 0.5}
    together = {("a", "b"): 0.85, ("a", "c"): 0.7, ("b", "a"): 0.65, ("b", "c"): 0.6,
                ("c", "a"): 0.55, ("c", "b"): 0.4}
    calls = []

    def score(target, helper):
        calls.append((target, helper))
        return alone[target] if helper is None else together[(target, helper)]

    result = transfer_gain_matrix(score, ["a", "b", "c"])
    assert len(calls) == 3 + 6
    torch.testing.assert_close(result.alone, torch.tensor([0.8, 0.6, 0.5], dtype=torch.float64))
    # gain[i, j]: target j trained with helper i
    assert float(result.gain[1, 0]) == pytest.approx(0.05)  # a with b
    assert float(result.gain[0, 2]) == pytest.approx(0.05)  # c with a
    assert float(result.gain[1, 2]) == pytest.approx(-0.1)  # c with b: negative transfer
    assert result.gain.diagonal().abs().max() == 0
    with pytest.raises(ValueError, match="finite"):
        transfer_gain_matrix(lambda t, h: math.nan, ["a", "b"])
    with pytest.raises(ValueError, match="tasks"):
        transfer_gain_matrix(score, [])
