"""Episodes (few-shot tasks): a support set to learn from and a query set to be tested on.

Chapter: Concepts (the episodic formulation).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["Episode", "EpisodeBatch"]


def _check_split(x: Tensor, y: Tensor, name: str, batch_dims: int) -> None:
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise ValueError(f"{name}_x and {name}_y must be tensors")
    if (batch_dims == 1 and y.ndim == 1 and x.ndim >= 3 and y.shape[0] == x.shape[1]
            and not y.dtype.is_floating_point):
        raise ValueError(
            f"{name}_y has shape {tuple(y.shape)}: one label per example but no task "
            f"dimension; a batch needs [n_tasks, n] labels ({name}_x is {tuple(x.shape)}). "
            "For labels shared by every task use EpisodeBatch.from_shared_labels(...)"
        )
    if x.ndim < batch_dims + 1 or y.ndim < batch_dims + 1:
        raise ValueError(f"{name}_x and {name}_y need an example dimension")
    if x.shape[: batch_dims + 1] != y.shape[: batch_dims + 1]:
        raise ValueError(
            f"{name}_x and {name}_y disagree on the number of examples: "
            f"{tuple(x.shape)} vs {tuple(y.shape)}"
        )
    if x.shape[batch_dims] == 0:
        raise ValueError(f"{name} set is empty")


def _check_pair(support_x: Tensor, support_y: Tensor, query_x: Tensor, query_y: Tensor,
                batch_dims: int) -> None:
    _check_split(support_x, support_y, "support", batch_dims)
    _check_split(query_x, query_y, "query", batch_dims)
    b = batch_dims + 1
    if support_x.shape[b:] != query_x.shape[b:]:
        raise ValueError(
            f"support and query inputs differ in shape: {tuple(support_x.shape[b:])} vs "
            f"{tuple(query_x.shape[b:])}"
        )
    if support_x.dtype != query_x.dtype:
        raise ValueError(f"support_x and query_x must have the same dtype, got {support_x.dtype} "
                         f"and {query_x.dtype}; convert one (e.g. query_x.to({support_x.dtype}))")
    if support_y.dtype != query_y.dtype or support_y.shape[b:] != query_y.shape[b:]:
        raise ValueError("support_y and query_y must share dtype and per-example shape")
    if not support_y.dtype.is_floating_point and support_y.dtype != torch.int64:
        raise ValueError(f"class labels (support_y, query_y) must be int64, got "
                         f"{support_y.dtype}; use .long()")
    devices = {t.device for t in (support_x, support_y, query_x, query_y)}
    if len(devices) != 1:
        raise ValueError(f"all episode tensors must be on one device, got {devices}")
    if not support_y.dtype.is_floating_point:
        if support_y.ndim != batch_dims + 1:
            raise ValueError("class labels must have shape [n] (one integer per example)")
        _check_labels(support_y, query_y)


def _check_labels(support_y: Tensor, query_y: Tensor) -> None:
    """Labels must be 0..n_way-1, each present in the support; query labels must be known."""
    sy = support_y.reshape(-1, support_y.shape[-1])
    qy = query_y.reshape(-1, query_y.shape[-1])
    n_way = sy.max(dim=1).values + 1  # [tasks]
    if sy.min() < 0:
        raise ValueError("support labels must be non-negative (0 .. n_way-1)")
    present = torch.zeros(sy.shape[0], int(n_way.max()), dtype=torch.bool, device=sy.device)
    present.scatter_(1, sy, True)
    expected = torch.arange(present.shape[1], device=sy.device) < n_way[:, None]
    if not torch.equal(present, expected):
        raise ValueError(
            "support labels must be exactly 0 .. n_way-1 with every class present; remap them "
            "(EpisodeSampler does) before building an Episode"
        )
    if qy.min() < 0 or (qy >= n_way[:, None]).any():
        raise ValueError("every query label must be one of the support labels (0 .. n_way-1)")


@dataclass(frozen=True, eq=False)
class Episode:
    """One few-shot task.

    For classification the labels are int64 in ``0 .. n_way-1`` and every class appears in
    the support set; for regression they are floating point.

    Args:
        support_x: ``[n_support, *input_shape]``.
        support_y: ``[n_support]`` class labels, or ``[n_support, *target_shape]`` targets.
        query_x: ``[n_query_total, *input_shape]``.
        query_y: ``[n_query_total]`` or ``[n_query_total, *target_shape]``.
        classes: optional ``[n_way]`` original class index of each label (for display).
    """

    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor
    classes: Tensor | None = None

    def __post_init__(self) -> None:
        _check_pair(self.support_x, self.support_y, self.query_x, self.query_y, batch_dims=0)
        if self.classes is not None and (
            not isinstance(self.classes, Tensor) or not self.is_classification
            or self.classes.shape != (self.n_way,)
        ):
            raise ValueError("classes must be a [n_way] tensor, for classification episodes")

    @property
    def is_classification(self) -> bool:
        return not self.support_y.dtype.is_floating_point

    @property
    def n_way(self) -> int:
        """Number of classes (classification episodes only)."""
        if not self.is_classification:
            raise ValueError("n_way is defined for classification episodes only")
        return int(self.support_y.max()) + 1

    @property
    def device(self) -> torch.device:
        return self.support_x.device

    def to(self, device: torch.device | str | None = None,
           dtype: torch.dtype | None = None) -> Episode:
        """Move to ``device``; ``dtype`` converts inputs (and float targets), never labels."""
        return Episode(*_moved(self, device, dtype))


@dataclass(frozen=True, eq=False)
class EpisodeBatch:
    """A batch of equally shaped episodes, stacked along a leading task dimension for ``vmap``.

    Shapes are those of :class:`Episode` with a leading ``[n_tasks]``.
    """

    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor
    classes: Tensor | None = None

    def __post_init__(self) -> None:
        _check_pair(self.support_x, self.support_y, self.query_x, self.query_y, batch_dims=1)
        if self.support_x.shape[0] != self.query_x.shape[0]:
            raise ValueError("support and query must have the same number of tasks")
        if self.classes is not None and not isinstance(self.classes, Tensor):
            raise ValueError("classes must be a [n_tasks, n_way] tensor or None")

    @staticmethod
    def from_shared_labels(support_x: Tensor, support_y: Tensor, query_x: Tensor,
                           query_y: Tensor) -> EpisodeBatch:
        """A batch whose tasks all use the same labels, given once.

        Common in benchmarks and in class-ordered samplers: every task's support is
        ``0, 1, ..., n_way-1`` (repeated per shot) and so is its query set.

        Args:
            support_x: ``[n_tasks, n_support, *input_shape]``.
            support_y: ``[n_support]`` labels (or targets) shared by every task.
            query_x: ``[n_tasks, n_query, *input_shape]``.
            query_y: ``[n_query]`` shared labels.

        Returns:
            The batch, with the labels expanded to ``[n_tasks, n]`` (a view: no copy).

        Raises:
            ValueError: inputs without a task dimension, or labels that do not match the
                number of examples.

        Example:
            >>> labels = torch.arange(5)
            >>> batch = EpisodeBatch.from_shared_labels(torch.rand(32, 5, 1, 28, 28), labels,
            ...                                          torch.rand(32, 5, 1, 28, 28), labels)
            >>> tuple(batch.support_y.shape)
            (32, 5)
        """
        for name, x, y in (("support", support_x, support_y), ("query", query_x, query_y)):
            if not isinstance(x, Tensor) or not isinstance(y, Tensor):
                raise ValueError(f"{name}_x and {name}_y must be tensors")
            if x.ndim < 3:
                raise ValueError(f"{name}_x must be [n_tasks, n, *input_shape], got shape "
                                 f"{tuple(x.shape)}")
            if y.ndim < 1 or y.shape[0] != x.shape[1]:
                raise ValueError(f"{name}_y must hold one label per example shared by every "
                                 f"task, shape [{x.shape[1]}, ...], got {tuple(y.shape)}")
        n_tasks = support_x.shape[0]
        return EpisodeBatch(support_x, support_y.expand(n_tasks, *support_y.shape), query_x,
                            query_y.expand(n_tasks, *query_y.shape))

    @staticmethod
    def stack(episodes: Sequence[Episode]) -> EpisodeBatch:
        """Stack episodes of identical shapes (same n_way, shots and queries).

        ``classes`` is kept if every episode has it and dropped (None) otherwise.
        """
        if len(episodes) == 0:
            raise ValueError("cannot stack an empty list of episodes")
        wrong = [type(ep).__name__ for ep in episodes if not isinstance(ep, Episode)]
        if wrong:
            raise ValueError(f"episodes must be Episode objects, got {wrong[0]}")
        first = episodes[0]
        for i, ep in enumerate(episodes):
            for f in ("support_x", "support_y", "query_x", "query_y"):
                a, b = getattr(ep, f), getattr(first, f)
                if a.shape != b.shape or a.dtype != b.dtype:
                    raise ValueError(
                        f"episode {i} has {f} {tuple(a.shape)} {a.dtype}, episode 0 has "
                        f"{tuple(b.shape)} {b.dtype}; sample them with the same sizes to stack"
                    )
        has_classes = all(ep.classes is not None for ep in episodes)
        return EpisodeBatch(
            torch.stack([ep.support_x for ep in episodes]),
            torch.stack([ep.support_y for ep in episodes]),
            torch.stack([ep.query_x for ep in episodes]),
            torch.stack([ep.query_y for ep in episodes]),
            torch.stack([ep.classes for ep in episodes]) if has_classes else None,  # type: ignore[misc]
        )

    def __len__(self) -> int:
        return self.support_x.shape[0]

    def __getitem__(self, i: int) -> Episode:
        return Episode(
            self.support_x[i], self.support_y[i], self.query_x[i], self.query_y[i],
            None if self.classes is None else self.classes[i],
        )

    def __iter__(self) -> Iterator[Episode]:
        return (self[i] for i in range(len(self)))

    @property
    def device(self) -> torch.device:
        return self.support_x.device

    def to(self, device: torch.device | str | None = None,
           dtype: torch.dtype | None = None) -> EpisodeBatch:
        """Move to ``device``; ``dtype`` converts inputs (and float targets), never labels."""
        return EpisodeBatch(*_moved(self, device, dtype))


def _moved(ep: Episode | EpisodeBatch, device: torch.device | str | None,
           dtype: torch.dtype | None) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor | None]:
    """The fields of ``ep`` on ``device``; ``dtype`` converts inputs and float targets only."""

    def move(t: Tensor, convert: bool) -> Tensor:
        return t.to(device=device, dtype=dtype if convert else None)

    float_y = ep.support_y.dtype.is_floating_point
    return (move(ep.support_x, True), move(ep.support_y, float_y), move(ep.query_x, True),
            move(ep.query_y, float_y), None if ep.classes is None else move(ep.classes, False))
