"""Multi-task batches: inputs and targets keyed by task name, and a sampler that draws them.

Two shapes of multi-task data are common and both fit one batch type:

* **one input, several labels** (MultiMNIST: left and right digit of the same image; the
  synthetic regression family): every task maps to the *same* input tensor object;
* **each task its own data** (Omniglot alphabets): each task has its own inputs.

Chapter: Multi-task learning (data).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from companion._checks import check_positive_int, generator_from

__all__ = ["MultiTaskBatch", "MultiTaskSampler"]


def _check_names(names: tuple[str, ...], name: str) -> None:
    if not names:
        raise ValueError(f"{name} must hold at least one task, got none")
    if any(not isinstance(t, str) or not t for t in names):
        raise ValueError(f"{name}: task names must be non-empty strings, got {list(names)}")


@dataclass(frozen=True, eq=False)
class MultiTaskBatch:
    """Inputs and targets per task.

    Args:
        x: task name -> inputs ``[B_t, ...]`` (the same tensor object for every task when the
            tasks share their inputs; build such a batch with :meth:`shared`).
        y: task name -> targets ``[B_t]`` (class indices) or ``[B_t, ...]`` (regression).
    """

    x: Mapping[str, Tensor]
    y: Mapping[str, Tensor]

    def __post_init__(self) -> None:
        tasks = tuple(self.y)
        _check_names(tasks, "y")
        if set(self.x) != set(tasks) or len(self.x) != len(tasks):
            raise ValueError(f"x and y must name the same tasks, got {list(self.x)} and "
                             f"{list(tasks)}")
        for t in tasks:
            if self.x[t].shape[:1] != self.y[t].shape[:1]:
                raise ValueError(f"y[{t!r}] has {self.y[t].shape[0]} rows but x[{t!r}] has "
                                 f"{self.x[t].shape[0]}")

    @classmethod
    def shared(cls, x: Tensor, y: Mapping[str, Tensor]) -> MultiTaskBatch:
        """One input tensor ``[B, ...]`` for every task in ``y``."""
        return cls(dict.fromkeys(y, x), dict(y))

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.y)

    @property
    def shared_input(self) -> Tensor | None:
        """The common input tensor if every task has the same object, else None."""
        first = self.x[self.tasks[0]]
        return first if all(self.x[t] is first for t in self.tasks) else None

    @property
    def device(self) -> torch.device:
        return self.x[self.tasks[0]].device

    def to(self, device: torch.device | str) -> MultiTaskBatch:
        """The same batch on ``device`` (a shared input stays one tensor)."""
        moved: dict[int, Tensor] = {}
        x = {}
        for t, v in self.x.items():
            if id(v) not in moved:
                moved[id(v)] = v.to(device)
            x[t] = moved[id(v)]
        return MultiTaskBatch(x, {t: v.to(device) for t, v in self.y.items()})


def _as_input(x: Tensor) -> Tensor:
    return x.float() / 255 if x.dtype == torch.uint8 else x  # images: [0, 255] -> [0, 1]


@dataclass
class MultiTaskSampler:
    """Draws :class:`MultiTaskBatch` es for :func:`companion.fit` (``sample_batch(n)``).

    uint8 inputs (images) are scaled to floats in ``[0, 1]``. With shared inputs, one set of
    rows is drawn for all tasks; otherwise each task draws its own rows. Rows are drawn
    without replacement within a batch.

    Args:
        x: task name -> all inputs of that task ``[N_t, ...]`` (same object: shared).
        y: task name -> all targets ``[N_t, ...]``.
        generator: the only source of randomness.
    """

    x: Mapping[str, Tensor]
    y: Mapping[str, Tensor]
    generator: torch.Generator

    def __post_init__(self) -> None:
        MultiTaskBatch(self.x, self.y)  # validates names and row counts

    @classmethod
    def from_arrays(cls, x: Mapping[str, Tensor], y: Mapping[str, Tensor], *,
                    generator: torch.Generator | None = None,
                    seed: int | None = None) -> MultiTaskSampler:
        return cls(x, y, generator_from(generator, seed))

    def sample_batch(self, n: int) -> MultiTaskBatch:
        """``n`` rows per task (all rows if a task has fewer)."""
        check_positive_int("n", n)
        batch = MultiTaskBatch(self.x, self.y)
        shared = batch.shared_input
        if shared is not None:
            rows = torch.randperm(shared.shape[0], generator=self.generator)[:n]
            xs = _as_input(shared[rows.to(shared.device)])
            return MultiTaskBatch.shared(xs, {t: v[rows.to(v.device)] for t, v in self.y.items()})
        x, y = {}, {}
        for t in batch.tasks:
            rows = torch.randperm(self.x[t].shape[0], generator=self.generator)[:n]
            x[t] = _as_input(self.x[t][rows.to(self.x[t].device)])
            y[t] = self.y[t][rows.to(self.y[t].device)]
        return MultiTaskBatch(x, y)

    def full_batch(self) -> MultiTaskBatch:
        """Every row of every task (e.g. a whole validation set), inputs scaled like batches."""
        batch = MultiTaskBatch(self.x, self.y)
        shared = batch.shared_input
        if shared is not None:
            return MultiTaskBatch.shared(_as_input(shared), dict(self.y))
        return MultiTaskBatch({t: _as_input(v) for t, v in self.x.items()}, dict(self.y))
