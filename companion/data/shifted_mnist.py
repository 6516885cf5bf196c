"""A colour- and texture-shifted MNIST (MNIST-M-like), made deterministically in code.

MNIST-M (Ganin et al., 2016) blends each MNIST digit with a random patch of a colour photo:
``out = |background - digit|`` per channel, so the digit shows as an inverted stroke on a
textured, coloured background. Here the photos are replaced by textures generated from a
seed, so no download is needed and every reader gets the same images:

* a sum of ``n_waves`` oriented sinusoids per image, each with a random frequency (0.5 to
  4 cycles per image), direction, phase and RGB colour, plus
* smooth colour noise (``7x7`` Gaussian noise upsampled bicubically, weight 0.2),

rescaled to ``[0, 1]`` per image, then blended with the digit as in MNIST-M. The labels are
MNIST's. Every random number is drawn from one ``torch.Generator`` seeded with ``seed``,
all at once, so the result depends on the seed and the number of images (the textures of a
subset are not those of the same images in the full set), not on the chunk size used.

Chapter: Transfer learning (domain adaptation).
Reference: :cite:t:`ganin2016domain` (MNIST-M).
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F
from torch import Tensor

from companion._checks import check_positive_int, check_seed
from companion.data.dataset import ImageClassDataset
from companion.data.mnist import load_mnist

__all__ = ["load_shifted_mnist", "shift_colours", "textures"]


def textures(n: int, size: int, *, generator: torch.Generator, n_waves: int = 4,
             chunk: int = 1024) -> Tensor:
    """``[n, 3, size, size]`` float textures in ``[0, 1]`` (see the module docstring)."""
    check_positive_int("n", n)
    check_positive_int("n_waves", n_waves)
    g = generator
    freq = 0.5 + 3.5 * torch.rand(n, n_waves, generator=g)  # cycles per image
    angle = 2 * math.pi * torch.rand(n, n_waves, generator=g)
    phase = 2 * math.pi * torch.rand(n, n_waves, generator=g)
    colour = torch.rand(n, n_waves, 3, generator=g)  # RGB weight of each wave
    noise = torch.randn(n, 3, 7, 7, generator=g)
    grid = torch.arange(size, dtype=torch.float32) / size  # [size]
    v, u = torch.meshgrid(grid, grid, indexing="ij")  # [size, size] each
    out = []
    for rows in torch.arange(n).split(chunk):
        f, a, p = freq[rows, :, None, None], angle[rows, :, None, None], phase[rows, :, None, None]
        waves = torch.sin(2 * math.pi * f * (u * torch.cos(a) + v * torch.sin(a)) + p)  # [c,K,s,s]
        tex = torch.einsum("kihw,kic->kchw", (waves + 1) / 2, colour[rows])  # [c, 3, s, s]
        tex = tex / n_waves + 0.2 * F.interpolate(noise[rows], size=(size, size),
                                                  mode="bicubic", align_corners=False)
        low = tex.amin(dim=(1, 2, 3), keepdim=True)
        high = tex.amax(dim=(1, 2, 3), keepdim=True)
        out.append((tex - low) / (high - low).clamp_min(1e-6))  # [c, 3, s, s] in [0, 1]
    return torch.cat(out)


def shift_colours(dataset: ImageClassDataset, *, seed: int = 0,
                  n_waves: int = 4) -> ImageClassDataset:
    """Blend every (grey) image of ``dataset`` with a generated texture, MNIST-M style.

    Args:
        dataset: ``[N, 1, H, W]`` uint8 images (ink 255), e.g. :func:`load_mnist`.
        seed: seeds the textures; the same seed gives the same images (>= 0).
        n_waves: sinusoids per texture.

    Returns:
        ``[N, 3, H, W]`` uint8 images ``round(255 * |texture - digit|)``, the same labels.
    """
    check_seed(seed)
    n, c, h, w = dataset.images.shape
    if c != 1 or h != w:
        raise ValueError(f"dataset must hold square grey images [N, 1, H, H], got "
                         f"{tuple(dataset.images.shape)}")
    if n == 0:
        raise ValueError("dataset is empty")
    tex = textures(n, h, generator=torch.Generator().manual_seed(seed), n_waves=n_waves)
    digit = dataset.images.cpu().float() / 255  # [N, 1, H, W]
    images = ((tex - digit).abs() * 255).round().to(torch.uint8)  # [N, 3, H, W]
    return ImageClassDataset(images.to(dataset.images.device), dataset.labels,
                             dataset.class_names, f"shifted_{dataset.name}")


def load_shifted_mnist(split: str = "test", *, seed: int = 0,
                       root: str | os.PathLike[str] | None = None,
                       mirror: str | os.PathLike[str] | None = None,
                       download: bool = True, progress: bool = True) -> ImageClassDataset:
    """MNIST ``split`` (see :func:`load_mnist`) with seeded textures: ``[N, 3, 28, 28]``."""
    mnist = load_mnist(split, root=root, mirror=mirror, download=download, progress=progress)
    return shift_colours(mnist, seed=seed)
