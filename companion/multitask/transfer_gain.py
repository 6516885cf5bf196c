"""The pairwise transfer-gain matrix: does training task ``j`` together with task ``i`` help?

    gain[i, j] = score(j trained with i) - score(j trained alone)

with ``score`` any "higher is better" number (e.g. test accuracy of task ``j``). Positive
entries are positive transfer, negative ones negative transfer. How a task is trained, alone
or in a pair, is the caller's function, so the helper works for any architecture, method or
data set. The diagonal is 0.

Chapter: Multi-task learning (task relatedness and negative transfer).
Reference: :cite:t:`standley2020which`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from companion.multitask._checks import check_tasks

__all__ = ["TransferGains", "transfer_gain_matrix"]


@dataclass(frozen=True, eq=False)
class TransferGains:
    """Scores alone, in pairs, and their differences.

    Args:
        tasks: the order of rows and columns.
        alone: ``[T]`` score of each task trained alone.
        paired: ``[T, T]``, ``paired[i, j]`` = score of ``j`` trained with ``i`` (diagonal:
            ``alone``).
        gain: ``[T, T]`` = ``paired - alone[None, :]`` (0 on the diagonal).
    """

    tasks: tuple[str, ...]
    alone: Tensor
    paired: Tensor
    gain: Tensor


def transfer_gain_matrix(score: Callable[[str, str | None], float],
                         tasks: Iterable[str]) -> TransferGains:
    """Call ``score(j, None)`` once per task and ``score(j, i)`` per ordered pair ``i != j``.

    Args:
        score: ``(target task, helper task or None) -> score of the target task`` after
            training it alone (None) or jointly with the helper.
        tasks: the task names.

    Raises:
        ValueError: ``score`` returned something that is not a finite number.
    """
    names = check_tasks(tasks)

    def call(j: str, i: str | None) -> float:
        value = score(j, i)
        if isinstance(value, Tensor):
            value = float(value)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"score({j!r}, {i!r}) must return a finite number, got {value!r}")
        return float(value)

    alone = torch.tensor([call(j, None) for j in names], dtype=torch.float64)  # [T]
    paired = torch.diag(alone).clone()  # [T, T]
    for a, i in enumerate(names):
        for b, j in enumerate(names):
            if a != b:
                paired[a, b] = call(j, i)
    return TransferGains(names, alone, paired, paired - alone[None, :])
