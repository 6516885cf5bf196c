"""A labelled image set held as two tensors, the input of every episode sampler.

Chapter: Concepts (data).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["ImageClassDataset"]


@dataclass(frozen=True, eq=False)
class ImageClassDataset:
    """Images with integer class labels, kept as uint8 to save memory.

    Args:
        images: ``[N, C, H, W]`` uint8, 0 = background, 255 = ink.
        labels: ``[N]`` int64 in ``0 .. len(class_names) - 1``.
        class_names: one readable name per class, e.g. ``"Greek/character03/rot090"``.
        name: what the set is, e.g. ``"omniglot/train"``.
    """

    images: Tensor
    labels: Tensor
    class_names: tuple[str, ...]
    name: str = "dataset"

    def __post_init__(self) -> None:
        for field, value in (("images", self.images), ("labels", self.labels)):
            if not isinstance(value, Tensor):
                raise ValueError(f"{field} must be a torch.Tensor, got {type(value).__name__}")
        if isinstance(self.class_names, (str, bytes)) or not isinstance(
                self.class_names, Sequence) or not all(isinstance(c, str)
                                                       for c in self.class_names):
            raise ValueError(f"class_names must be a sequence of str (one per class), got "
                             f"{self.class_names!r:.80}")
        object.__setattr__(self, "class_names", tuple(self.class_names))
        if not isinstance(self.name, str):
            raise ValueError(f"name must be a str, got {self.name!r}")
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(
                f"images must be a uint8 tensor [N, C, H, W], got {self.images.dtype} "
                f"with shape {tuple(self.images.shape)}"
            )
        if self.labels.dtype != torch.int64 or self.labels.shape != self.images.shape[:1]:
            raise ValueError(
                f"labels must be int64 with shape [N] = [{self.images.shape[0]}], got "
                f"{self.labels.dtype} with shape {tuple(self.labels.shape)}"
            )
        if self.labels.device != self.images.device:
            raise ValueError("images and labels must be on the same device")
        n_classes = len(self.class_names)
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= n_classes):
            raise ValueError(f"labels must lie in 0..{n_classes - 1} (one per class name)")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.images.shape[1:]
        return (c, h, w)

    def class_counts(self) -> Tensor:
        """``[num_classes]`` number of images per class."""
        return torch.bincount(self.labels.cpu(), minlength=self.num_classes)

    def to(self, device: torch.device | str) -> ImageClassDataset:
        """The same data on another device (e.g. the GPU, so episodes are sampled there)."""
        try:
            device = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise ValueError(f"device must name a torch device such as 'cpu' or 'cuda', got "
                             f"{device!r}") from err
        return ImageClassDataset(
            self.images.to(device), self.labels.to(device), self.class_names, self.name
        )

    def subset(self, classes: Sequence[int], name: str | None = None) -> ImageClassDataset:
        """Keep only ``classes`` (indices into ``class_names``), relabelled ``0 .. len - 1``."""
        if isinstance(classes, (str, bytes)) or not isinstance(classes, Sequence) or not all(
                isinstance(c, int) and not isinstance(c, bool) for c in classes):
            raise ValueError(f"classes must be a sequence of int class indices, got {classes!r}")
        keep = torch.as_tensor(list(classes), dtype=torch.int64)
        if keep.numel() == 0 or len(set(keep.tolist())) != keep.numel():
            raise ValueError("classes must be a non-empty sequence of distinct class indices")
        if keep.min() < 0 or keep.max() >= self.num_classes:
            raise ValueError(f"classes must lie in 0..{self.num_classes - 1}")
        new_label = torch.full((self.num_classes,), -1, dtype=torch.int64)
        new_label[keep] = torch.arange(len(keep))
        mask = new_label[self.labels.cpu()] >= 0
        idx = mask.nonzero().squeeze(1).to(self.images.device)
        return ImageClassDataset(
            self.images[idx],
            new_label.to(self.labels.device)[self.labels[idx]],
            tuple(self.class_names[i] for i in keep.tolist()),
            name or f"{self.name}[subset]",
        )
