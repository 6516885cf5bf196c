"""Batches of one domain, and the sampler that draws a (source, target) pair per step.

Domain adaptation trains on two streams at once: labelled source examples and unlabelled
target examples. :class:`DomainBatch` holds one domain's batch; :class:`DomainPairSampler`
draws a pair of them from its own ``torch.Generator``, the data source the shared training
loop calls (``sample_batch(n)``).

Chapter: Transfer learning (domain adaptation).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from companion._checks import check_positive_int, generator_from
from companion.data.dataset import ImageClassDataset

__all__ = ["DomainBatch", "DomainPairSampler"]


@dataclass(frozen=True, eq=False)
class DomainBatch:
    """A batch from one domain.

    Args:
        x: ``[n, *input_shape]`` floating-point inputs (``n >= 1``).
        y: optional ``[n]`` int64 class labels (required for the source domain).
        weight: optional ``[n]`` non-negative importance weights of source examples
            (e.g. from :func:`companion.transfer.importance_weights`).
    """

    x: Tensor
    y: Tensor | None = None
    weight: Tensor | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.x, Tensor) or self.x.ndim < 2 or not self.x.dtype.is_floating_point:
            raise ValueError("x must be a floating-point tensor [n, *input_shape]")
        n = self.x.shape[0]
        if n == 0:
            raise ValueError("x is an empty batch (n = 0)")
        if self.y is not None and (self.y.dtype != torch.int64 or self.y.shape != (n,)):
            raise ValueError(f"y must be int64 with shape [{n}], got {self.y.dtype} "
                             f"{tuple(self.y.shape)}")
        if self.weight is not None and (
                self.weight.shape != (n,) or not torch.isfinite(self.weight).all()
                or (self.weight < 0).any()):
            raise ValueError(f"weight must be [{n}] finite and non-negative")
        devices = {t.device for t in (self.x, self.y, self.weight) if t is not None}
        if len(devices) != 1:
            raise ValueError(f"x, y and weight must be on one device, got {devices}")

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def device(self) -> torch.device:
        return self.x.device

    def to(self, device: torch.device | str) -> DomainBatch:
        return DomainBatch(self.x.to(device), None if self.y is None else self.y.to(device),
                           None if self.weight is None else self.weight.to(device))


def _float_images(dataset: ImageClassDataset, channels: int | None) -> Tensor:
    x = dataset.images.float() / 255  # [N, C, H, W]
    if channels is not None and x.shape[1] != channels:
        if x.shape[1] != 1:
            raise ValueError(f"cannot turn {x.shape[1]}-channel images of {dataset.name} into "
                             f"{channels} channels (only 1-channel images are repeated)")
        x = x.expand(-1, channels, -1, -1).contiguous()  # grey -> [N, channels, H, W]
    return x


class DomainPairSampler:
    """Draws ``n`` labelled source and ``n`` unlabelled target examples per call.

    Args:
        source_x: ``[N_s, *input_shape]`` float inputs.
        source_y: ``[N_s]`` int64 labels.
        target_x: ``[N_t, *input_shape]`` float inputs.
        target_y: optional ``[N_t]`` labels, *never* put in training batches; used only by
            :meth:`sample_target` for evaluation.
        source_weight: optional ``[N_s]`` importance weights, carried into source batches.
        generator: the only source of randomness; or pass ``seed``.
        seed: seeds a fresh CPU generator.

    Each call draws rows uniformly without replacement within the call.
    """

    def __init__(self, source_x: Tensor, source_y: Tensor, target_x: Tensor, *,
                 target_y: Tensor | None = None, source_weight: Tensor | None = None,
                 generator: torch.Generator | None = None, seed: int | None = None) -> None:
        DomainBatch(source_x, source_y, source_weight)  # validates the source side
        DomainBatch(target_x, target_y)
        if source_x.shape[1:] != target_x.shape[1:]:
            raise ValueError(f"source_x and target_x inputs differ in shape: "
                             f"{tuple(source_x.shape[1:])} vs {tuple(target_x.shape[1:])}")
        self.source_x, self.source_y, self.source_weight = source_x, source_y, source_weight
        self.target_x, self.target_y = target_x, target_y
        self.generator = generator_from(generator, seed)

    @classmethod
    def from_datasets(cls, source: ImageClassDataset, target: ImageClassDataset, *,
                      channels: int | None = None, generator: torch.Generator | None = None,
                      seed: int | None = None) -> DomainPairSampler:
        """From two uint8 image sets (scaled to ``[0, 1]``); ``channels=3`` repeats grey
        images to three channels (e.g. MNIST -> shifted MNIST)."""
        return cls(_float_images(source, channels), source.labels,
                   _float_images(target, channels), target_y=target.labels,
                   generator=generator, seed=seed)

    def _rows(self, n: int, total: int, name: str) -> Tensor:
        check_positive_int("n", n)
        if n > total:
            raise ValueError(f"n={n} exceeds the {total} {name} examples")
        return torch.randperm(total, generator=self.generator)[:n]

    def sample_batch(self, n: int) -> tuple[DomainBatch, DomainBatch]:
        """``(source batch with labels [and weights], target batch without labels)``."""
        s = self._rows(n, len(self.source_x), "source").to(self.source_x.device)
        t = self._rows(n, len(self.target_x), "target").to(self.target_x.device)
        weight = None if self.source_weight is None else self.source_weight[s]
        return (DomainBatch(self.source_x[s], self.source_y[s], weight),
                DomainBatch(self.target_x[t]))

    def sample_target(self, n: int) -> DomainBatch:
        """A labelled target batch, for evaluation only."""
        if self.target_y is None:
            raise ValueError("this sampler has no target_y to evaluate with")
        t = self._rows(n, len(self.target_x), "target").to(self.target_x.device)
        return DomainBatch(self.target_x[t], self.target_y[t])
