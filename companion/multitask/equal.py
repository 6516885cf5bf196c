"""Equal weighting: the plain sum of the task losses, the baseline every method is compared with.

Chapter: Multi-task learning (loss weighting).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from torch import Tensor

from companion.multitask._checks import check_task_losses, check_tasks

__all__ = ["EqualWeighting"]


class EqualWeighting:
    """``L = sum_t L_t`` (every weight 1).

    Args:
        tasks: the task names (the losses must name exactly these).
    """

    def __init__(self, tasks: Iterable[str]) -> None:
        self.tasks = check_tasks(tasks)

    def weights(self) -> dict[str, float]:
        return dict.fromkeys(self.tasks, 1.0)

    def combine(self, losses: Mapping[str, Tensor]) -> Tensor:
        """The sum of the losses. ``{task: []}`` -> ``[]``."""
        checked = check_task_losses(losses, tasks=self.tasks)
        values = list(checked.values())
        total = values[0]
        for loss in values[1:]:
            total = total + loss
        return total
