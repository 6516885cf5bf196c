"""Mistake: "multi-task" code that is a single-output model trained on one data set.

The mistaken snippet::

    model = nn.Linear(d, 1)                      # one output, no notion of a task
    x, y = next(iter(tasks.values()))            # "multi-task" training on the first data set
    for _ in range(steps): sgd_step(model, x, y)

Symptoms a reader sees: the model's output does not depend on which task is asked; the other
tasks' losses do not improve at all (they were never seen); and nothing is *shared* across tasks
because there is only one task. A multi-task model shares a trunk and has one head per task,
trained on the sum (or a weighting) of every task's loss: :class:`companion.multitask.HardSharing`
and :class:`companion.multitask.MultiTaskLearner` (Caruana, 1997).

Chapter: Applications, open problems and FAQ (the clinic); multi-task learning. References:
:cite:t:`caruana1997multitask`.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from companion.multitask.hard_sharing import HardSharing

__all__ = ["MistakenMultiTaskModel", "correct_multitask_fit", "mistaken_multitask_fit",
           "task_losses"]

Tasks = Mapping[str, tuple[Tensor, Tensor]]  # task name -> (x [n, d], y [n, 1])


class MistakenMultiTaskModel(nn.Module):
    """MISTAKEN: one linear output; the ``task`` argument is accepted and ignored."""

    def __init__(self, in_features: int, tasks: tuple[str, ...]) -> None:
        super().__init__()
        self.tasks = tasks
        self.net = nn.Linear(in_features, 1)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        out = self.net(x)  # [n, 1]
        return {t: out for t in self.tasks}  # the same prediction for every task


def mistaken_multitask_fit(model: nn.Module, tasks: Tasks, *, steps: int, lr: float) -> None:
    """MISTAKEN: trains on the first task's data only."""
    x, y = next(iter(tasks.values()))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        out = next(iter(model(x).values()))
        F.mse_loss(out, y).backward()
        opt.step()


def correct_multitask_fit(model: HardSharing, tasks: Tasks, *, steps: int, lr: float) -> None:
    """CORRECTED: a shared trunk with one head per task, trained on the sum of the losses."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.stack([F.mse_loss(model(x, [t])[t], y) for t, (x, y) in tasks.items()])
        loss.sum().backward()
        opt.step()


def task_losses(model: nn.Module, tasks: Tasks) -> dict[str, float]:
    """Each task's mean squared error under ``model`` (a dict of outputs per task)."""
    with torch.no_grad():
        return {t: F.mse_loss(model(x)[t], y).item() for t, (x, y) in tasks.items()}
