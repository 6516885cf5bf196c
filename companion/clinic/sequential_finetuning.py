"""Mistake: "meta-learning" that is sequential fine-tuning, overwriting its own task list.

The mistaken snippet::

    for task in tasks:                     # "meta-training"
        fine_tune(model, task)             # no inner/outer loop: the next task overwrites this one
        tasks.remove(task)                 # "done": shifts the list, so the next task is skipped

Symptoms a reader sees:

1. **Catastrophic forgetting**: the loss on an early task is low right after training on it
   and high after the later tasks (on two conflicting tasks, the model ends at the last task's
   solution). Nothing is learned *about* adapting: the result is just a model fine-tuned on the
   last task, and it adapts badly to the others.
2. ``tasks.remove(task)`` inside ``for task in tasks`` skips every other task and empties the
   caller's list by half: with tasks ``[a, b, c, d]`` only ``a`` and ``c`` are visited.

Corrected: iterate over a tuple (never mutate what you loop over), and meta-learn with an inner
loop (adapt a copy of the weights to each task's support set) and an outer loop (update the
shared initialisation from the query losses after adaptation over a batch of tasks), as
:class:`companion.meta.MAML` does; :func:`correct_meta_learning` is that, minimal.

Chapter: Applications, open problems and FAQ (the clinic); MAML. References:
:cite:t:`finn2017model`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from companion.meta.functional import inner_adapt

__all__ = ["adapted_loss", "correct_meta_learning", "correct_task_loop", "fine_tune", "loss_on",
           "mistaken_task_loop", "sequential_fine_tuning"]

Task = tuple[Tensor, Tensor]  # x [n, d], y [n, 1]


def fine_tune(model: nn.Module, task: Task, *, steps: int, lr: float) -> None:
    """Plain gradient descent on one task (in place)."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    x, y = task
    for _ in range(steps):
        opt.zero_grad()
        F.mse_loss(model(x), y).backward()
        opt.step()


def loss_on(model: nn.Module, task: Task) -> float:
    with torch.no_grad():
        return F.mse_loss(model(task[0]), task[1]).item()


def sequential_fine_tuning(model: nn.Module, tasks: Sequence[Task], *, steps: int,
                           lr: float) -> list[list[float]]:
    """MISTAKEN "meta-learning" (bug 1): fine-tune on each task in turn.

    Returns:
        ``history[i][j]``: the loss on task ``j`` after the ``i``-th task's fine-tuning (the
        forgetting curve).
    """
    history = []
    for task in tasks:
        fine_tune(model, task, steps=steps, lr=lr)
        history.append([loss_on(model, t) for t in tasks])
    return history


def mistaken_task_loop(tasks: list[Any], visit: Callable[[Any], None]) -> None:
    """MISTAKEN (bug 2): removes each task from the list it iterates over."""
    for task in tasks:
        visit(task)
        tasks.remove(task)


def correct_task_loop(tasks: Sequence[Any], visit: Callable[[Any], None]) -> None:
    """CORRECTED: iterate over an immutable copy; the caller's list is left alone."""
    for task in tuple(tasks):
        visit(task)


def correct_meta_learning(model: nn.Module, tasks: Sequence[Task], *, inner_lr: float,
                          outer_lr: float, iterations: int) -> None:
    """CORRECTED: an inner loop per task (one step, functional) and an outer loop over tasks."""
    opt = torch.optim.SGD(model.parameters(), lr=outer_lr)
    for _ in range(iterations):
        params = dict(model.named_parameters())
        losses = []
        for x, y in tasks:  # support = query here, to keep the snippet small
            fast = inner_adapt(model, params, x, y, loss_fn=F.mse_loss, steps=1, lr=inner_lr)
            losses.append(F.mse_loss(functional_call(model, fast, (x,)), y))
        opt.zero_grad()
        torch.stack(losses).mean().backward()
        opt.step()


def adapted_loss(model: nn.Module, task: Task, *, inner_lr: float, steps: int = 1) -> float:
    """The task's loss after ``steps`` gradient steps from the model's weights."""
    x, y = task
    params = {k: v.detach() for k, v in model.named_parameters()}
    fast = inner_adapt(model, params, x, y, loss_fn=F.mse_loss, steps=steps, lr=inner_lr)
    with torch.no_grad():
        return F.mse_loss(functional_call(model, fast, (x,)), y).item()
