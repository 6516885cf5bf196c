"""MultiMNIST: two overlapping MNIST digits per image; the tasks are the left and the right digit.

The construction of Sener & Koltun (2018, after Sabour et al., 2017): on a 36x36 canvas, one
digit is shifted up and to the left of the centre, another down and to the right, by
``shift`` pixels each, and the two are merged by the pixel-wise maximum. Task ``"left"`` is
the class of the upper-left digit, task ``"right"`` that of the lower-right one.

Only the MNIST **test set** (10,000 digits) is in the project's mirror, so it is the source:
it is split once, by the fixed seed :data:`SPLIT_SEED`, into 8,000 / 1,000 / 1,000 digits
(train / validation / test); each split builds its images from its own digits only, so no
digit appears in two splits. Within a split, ``seed`` draws a random order ``p`` of its
digits and image ``k`` places ``p[k]`` left and ``p[k + 1]`` right (cyclically): every digit
appears once on each side, never paired with itself. Same seed, same images.

Chapter: Multi-task learning (data). References: :cite:t:`sener2018multi`,
:cite:t:`sabour2017dynamic`, :cite:t:`lecun1998gradient`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from companion._checks import check_seed
from companion.data.dataset import ImageClassDataset
from companion.data.mnist import load_mnist
from companion.data.multitask_batch import MultiTaskBatch, MultiTaskSampler

__all__ = ["MULTIMNIST_SPLITS", "SPLIT_SEED", "MultiMNIST", "compose_pairs", "load_multimnist"]

SPLIT_SEED = 2018  # fixed: which MNIST test digits go to train / val / test
MULTIMNIST_SPLITS = {"train": (0, 8000), "val": (8000, 9000), "test": (9000, 10000)}
CANVAS = 36


@dataclass(frozen=True, eq=False)
class MultiMNIST:
    """A MultiMNIST split.

    Args:
        images: ``[N, 1, S, S]`` uint8 (ink 255).
        left: ``[N]`` int64 class of the upper-left digit.
        right: ``[N]`` int64 class of the lower-right digit.
        sources: ``[N, 2]`` rows of the MNIST test set placed left and right.
        name: e.g. ``"multimnist/train"``.
    """

    images: Tensor
    left: Tensor
    right: Tensor
    sources: Tensor
    name: str = "multimnist"

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def labels(self) -> dict[str, Tensor]:
        """``{"left": [N], "right": [N]}``."""
        return {"left": self.left, "right": self.right}

    def sampler(self, *, generator: torch.Generator | None = None,
                seed: int | None = None) -> MultiTaskSampler:
        """Random mini-batches (images scaled to ``[0, 1]``) for training."""
        return MultiTaskSampler.from_arrays(dict.fromkeys(("left", "right"), self.images),
                                            self.labels, generator=generator, seed=seed)

    def full_batch(self) -> MultiTaskBatch:
        """The whole split as one batch (images scaled to ``[0, 1]``), e.g. for evaluation."""
        return MultiTaskBatch.shared(self.images.float() / 255, self.labels)


def compose_pairs(digits: Tensor, left: Tensor, right: Tensor, *, shift: int = 3,
                  image_size: int = CANVAS) -> Tensor:
    """Overlay ``digits[left]`` (shifted up-left) and ``digits[right]`` (down-right).

    Args:
        digits: ``[M, 1, 28, 28]`` uint8.
        left, right: ``[N]`` row indices into ``digits``.
        shift: pixels each digit moves from the centre of the 36x36 canvas (1 to 4); the two
            digits are ``2 * shift`` pixels apart along both axes.
        image_size: 36 (no resampling) or 28 (area-averaged down to MNIST's size).

    Returns:
        ``[N, 1, image_size, image_size]`` uint8, the pixel-wise maximum of the two digits.
    """
    if digits.dtype != torch.uint8 or tuple(digits.shape[1:]) != (1, 28, 28):
        raise ValueError(f"digits must be uint8 [M, 1, 28, 28], got {digits.dtype} "
                         f"{tuple(digits.shape)}")
    if left.shape != right.shape or left.ndim != 1:
        raise ValueError("left and right must be index vectors of the same length")
    if not isinstance(shift, int) or not 1 <= shift <= 4:
        raise ValueError(f"shift must be an int from 1 to 4, got {shift!r}")
    if image_size not in (28, CANVAS):
        raise ValueError(f"image_size must be 28 or 36, got {image_size!r}")
    n, centre = left.shape[0], (CANVAS - 28) // 2
    a, b = centre - shift, centre + shift  # top-left corners of the left and right digit
    canvas_l = torch.zeros(n, 1, CANVAS, CANVAS, dtype=torch.uint8)
    canvas_r = torch.zeros_like(canvas_l)
    canvas_l[:, :, a:a + 28, a:a + 28] = digits[left]
    canvas_r[:, :, b:b + 28, b:b + 28] = digits[right]
    images = torch.maximum(canvas_l, canvas_r)  # [N, 1, 36, 36]
    if image_size == CANVAS:
        return images
    small = F.interpolate(images.float(), size=(image_size, image_size), mode="area")
    return small.round().clamp(0, 255).to(torch.uint8)  # [N, 1, 28, 28]


def load_multimnist(
    split: str = "train",
    *,
    seed: int = 0,
    shift: int = 3,
    image_size: int = CANVAS,
    mnist: ImageClassDataset | None = None,
    root: str | os.PathLike[str] | None = None,
    mirror: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: bool = True,
) -> MultiMNIST:
    """Build a MultiMNIST split from the MNIST test set (see the module docstring).

    Args:
        split: ``"train"`` (8,000 images), ``"val"`` (1,000) or ``"test"`` (1,000).
        seed: draws the pairing within the split.
        shift, image_size: see :func:`compose_pairs`.
        mnist: the MNIST test set if already loaded (else :func:`load_mnist` is called with
            ``root``, ``mirror``, ``download``, ``progress``).

    Example:
        >>> train = load_multimnist("train", seed=0)
        >>> train.images.shape, train.left[:3], train.right[:3]
    """
    if split not in MULTIMNIST_SPLITS:
        raise ValueError(f"split must be one of {tuple(MULTIMNIST_SPLITS)}, got {split!r}")
    check_seed(seed)
    if mnist is None:
        mnist = load_mnist("test", root=root, mirror=mirror, download=download,
                           progress=progress)
    if len(mnist) != 10_000:
        raise ValueError(f"mnist must be the 10,000-image MNIST test set, got {len(mnist)}")
    order = torch.randperm(len(mnist), generator=torch.Generator().manual_seed(SPLIT_SEED))
    lo, hi = MULTIMNIST_SPLITS[split]
    rows = order[lo:hi]  # [n] MNIST rows of this split
    pairing = rows[torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))]
    left, right = pairing, torch.roll(pairing, -1)  # image k: p[k] left, p[k + 1] right
    images = compose_pairs(mnist.images.cpu(), left, right, shift=shift, image_size=image_size)
    labels = mnist.labels.cpu()
    return MultiMNIST(images, labels[left], labels[right], torch.stack([left, right], dim=1),
                      f"multimnist/{split}")
