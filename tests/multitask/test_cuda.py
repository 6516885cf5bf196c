"""Every method takes its device from the inputs: one step of each on a CUDA device."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion.data import LinearTaskFamily
from companion.multitask import HardSharing, multitask_learner
from companion.multitask.config import GRADIENT_METHODS, LOSS_METHODS

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("method", [*LOSS_METHODS, *GRADIENT_METHODS])
def test_one_step_on_cuda(method):
    family = LinearTaskFamily(n_tasks=3, dim=5, cosine=0.2)
    model = HardSharing(nn.Sequential(nn.Linear(5, 8), nn.Tanh()),
                        {t: nn.Linear(8, 1) for t in family.tasks})
    learner = multitask_learner(model, dict.fromkeys(family.tasks, "regression"),
                                method=method).cuda()
    batch = family.sampler(seed=0).sample_batch(16).to("cuda")
    for _ in range(3):  # DWA's weights change after two epochs
        if method == "gradnorm":
            opts: object = (torch.optim.SGD(learner.model_parameters(), lr=0.01),
                            torch.optim.SGD(learner.gradnorm.parameters(), lr=0.01))
            loss, _ = learner.training_step(batch, opts)
        elif hasattr(learner, "training_step"):
            loss, _ = learner.training_step(
                batch, torch.optim.SGD(learner.parameters(), lr=0.01))
        else:
            loss, _ = learner.training_loss(batch)
            loss.backward()
        assert loss.device.type == "cuda" and torch.isfinite(loss.detach())
    assert all(v.device.type == "cuda" for v in learner.evaluation_metrics(batch).values())
