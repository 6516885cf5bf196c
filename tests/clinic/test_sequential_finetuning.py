"""Sequential fine-tuning forgets; mutating the task list skips tasks; MAML adapts to both."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion.clinic import sequential_finetuning as clinic

X = torch.tensor([[-1.0], [1.0], [-1.0], [1.0]])  # mean of x^2 is exactly 1
TASK_A, TASK_B = (X, 2 * X), (X, -2 * X)  # conflicting: slope +2 vs slope -2
INNER_LR = 0.4


def _line(w: float = 0.5) -> nn.Linear:
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(w)
    return model


def test_sequential_fine_tuning_forgets_the_first_task():
    history = clinic.sequential_fine_tuning(_line(), [TASK_A, TASK_B], steps=100, lr=0.2)
    after_a, after_b = history[0][0], history[1][0]  # loss on task A after each stage
    assert after_a < 1e-6
    assert after_b == pytest.approx(16.0, rel=1e-4)  # (w - 2)^2 at w = -2


def _worst_adapted_loss(model: nn.Module) -> float:
    # one step from w: w' = 0.2 w +- 1.6, so the loss is (0.2 w -+ 0.4)^2
    return max(clinic.adapted_loss(model, t, inner_lr=INNER_LR) for t in (TASK_A, TASK_B))


def _sequential() -> nn.Module:
    model = _line()
    clinic.sequential_fine_tuning(model, [TASK_A, TASK_B], steps=100, lr=0.2)
    return model  # at w = -2: adapted losses 0.64 (task A) and 0 (task B)


def _meta_learned() -> nn.Module:
    model = _line()
    clinic.correct_meta_learning(model, [TASK_A, TASK_B], inner_lr=INNER_LR, outer_lr=2.0,
                                 iterations=40)
    return model  # w -> 0: adapted losses 0.16 on both tasks


@pytest.mark.parametrize("build, is_right", [(_meta_learned, True), (_sequential, False)])
def test_the_learned_initialisation_adapts_to_every_task(build, is_right):
    assert (_worst_adapted_loss(build()) < 0.2) is is_right


@pytest.mark.parametrize("loop, is_right", [(clinic.correct_task_loop, True),
                                            (clinic.mistaken_task_loop, False)])
def test_every_task_is_visited_and_the_list_is_kept(loop, is_right):
    tasks = ["a", "b", "c", "d"]
    visited: list[str] = []
    loop(tasks, visited.append)
    assert (visited == ["a", "b", "c", "d"] and tasks == ["a", "b", "c", "d"]) is is_right
    if not is_right:
        assert visited == ["a", "c"] and tasks == ["b", "d"]
