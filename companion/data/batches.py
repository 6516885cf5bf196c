"""Data sources for ordinary (non-episodic) training steps.

:func:`companion.fit` draws ``source.sample_batch(n)`` every step from any source with a
``torch.Generator``. Episodic learners get an :class:`~companion.data.EpisodeBatch` from an
:class:`~companion.data.EpisodeSampler`; the sources here give the other shapes of step:

* :class:`BatchSampler` -> :class:`LabelledBatch` (pre-training, fine-tuning, one task);
* :class:`PairedSource` -> ``(source_batch, target_batch)`` (domain adaptation);
* :class:`MultiTaskSource` -> ``{task: batch}`` (multi-task learning).

Chapter: transfer learning; multi-task learning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from companion._checks import check_positive_int, generator_from
from companion.data.dataset import ImageClassDataset

__all__ = ["BatchSampler", "LabelledBatch", "MultiTaskSource", "PairedSource", "generators_of"]


@dataclass(frozen=True, eq=False)
class LabelledBatch:
    """Inputs with their labels (int64 classes) or targets (floating point).

    Args:
        x: ``[n, *input_shape]``.
        y: ``[n]`` class labels or ``[n, *target_shape]`` targets.
    """

    x: Tensor
    y: Tensor

    def __post_init__(self) -> None:
        if not isinstance(self.x, Tensor) or not isinstance(self.y, Tensor):
            raise ValueError("x and y must be tensors")
        if self.x.ndim == 0 or self.y.ndim == 0 or self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"x and y must share a leading example dimension, got "
                             f"{tuple(self.x.shape)} and {tuple(self.y.shape)}")
        if self.x.shape[0] == 0:
            raise ValueError("a batch needs at least one example")
        if self.x.device != self.y.device:
            raise ValueError(f"x and y are on different devices: {self.x.device} vs "
                             f"{self.y.device}")

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def device(self) -> torch.device:
        return self.x.device

    def to(self, device: torch.device | str) -> LabelledBatch:
        return LabelledBatch(self.x.to(device), self.y.to(device))


class BatchSampler:
    """Random mini-batches of a labelled set, drawn without replacement within a batch.

    Args:
        data: an :class:`ImageClassDataset` (images become float in ``[0, 1]``) or a pair of
            tensors ``(x [N, ...], y [N])``.
        generator: the only source of randomness; pass this or ``seed``.
        seed: seeds a fresh CPU generator when ``generator`` is not given.

    Example:
        >>> source = BatchSampler(load_omniglot("train"), seed=0)
        >>> batch = source.sample_batch(128)        # LabelledBatch, x [128, 1, 28, 28]
    """

    def __init__(self, data: ImageClassDataset | tuple[Tensor, Tensor], *,
                 generator: torch.Generator | None = None, seed: int | None = None) -> None:
        if isinstance(data, ImageClassDataset):
            self.x, self.y, self._images = data.images, data.labels, True
        elif (isinstance(data, tuple) and len(data) == 2
              and all(isinstance(t, Tensor) for t in data)):
            LabelledBatch(*data)  # validates shapes and devices
            self.x, self.y, self._images = data[0], data[1], False
        else:
            raise ValueError(f"data must be an ImageClassDataset or a tuple (x, y) of tensors, "
                             f"got {type(data).__name__}")
        self.generator = generator_from(generator, seed)

    def __len__(self) -> int:
        return self.x.shape[0]

    def sample_batch(self, n: int) -> LabelledBatch:
        """``n`` distinct random rows (``1 <= n <= len(self)``)."""
        check_positive_int("n", n)
        if n > len(self):
            raise ValueError(f"batch size {n} exceeds the {len(self)} examples available")
        rows = torch.randperm(len(self), generator=self.generator)[:n].to(self.x.device)
        x = self.x[rows]
        return LabelledBatch(x.float() / 255 if self._images else x, self.y[rows])


class PairedSource:
    """Draws a batch from each of two sources per step: ``(source_batch, target_batch)``.

    The usual use: labelled source-domain data and unlabelled (labels unused) target-domain
    data, for domain-adversarial or feature-alignment training.
    """

    def __init__(self, source: object, target: object) -> None:
        for name, s in (("source", source), ("target", target)):
            if not hasattr(s, "sample_batch"):
                raise ValueError(f"{name} must have sample_batch(n), got {type(s).__name__}")
        self.source, self.target = source, target

    @property
    def generators(self) -> tuple[torch.Generator, ...]:
        return generators_of(self.source) + generators_of(self.target)

    def sample_batch(self, n: int) -> tuple[object, object]:
        return self.source.sample_batch(n), self.target.sample_batch(n)  # type: ignore[attr-defined]


class MultiTaskSource:
    """Draws one batch per task per step: ``{task_name: batch}`` (in the sources' order)."""

    def __init__(self, sources: Mapping[str, object]) -> None:
        if not isinstance(sources, Mapping) or not sources:
            raise ValueError("sources must be a non-empty mapping task name -> source")
        for name, s in sources.items():
            if not hasattr(s, "sample_batch"):
                raise ValueError(f"sources[{name!r}] must have sample_batch(n), got "
                                 f"{type(s).__name__}")
        self.sources = dict(sources)

    @property
    def generators(self) -> tuple[torch.Generator, ...]:
        return tuple(g for s in self.sources.values() for g in generators_of(s))

    def sample_batch(self, n: int) -> dict[str, object]:
        return {name: s.sample_batch(n)  # type: ignore[attr-defined]
                for name, s in self.sources.items()}


def generators_of(source: object) -> tuple[torch.Generator, ...]:
    """Every random generator a data source draws from (saved and restored by checkpoints)."""
    many = getattr(source, "generators", None)
    if many is not None:
        return tuple(many)
    one = getattr(source, "generator", None)
    if not isinstance(one, torch.Generator):
        raise ValueError(f"a data source needs a torch.Generator attribute `generator` (or a "
                         f"`generators` tuple) so that runs can resume exactly; "
                         f"{type(source).__name__} has none")
    return (one,)
