"""Figures the chapters share: an episode's support and query images, an image grid.

Images follow the data convention ink = bright; they are drawn dark-on-white like paper.

Chapter: Concepts (the episode figure); reused by later chapters.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import Tensor

from companion.data.episode import Episode

__all__ = ["show_episode", "show_images"]

SUPPORT_COLOUR = "tab:blue"
QUERY_COLOUR = "tab:orange"


def _as_2d(image: Tensor) -> np.ndarray:
    image = image.detach().float().cpu()
    return (image[0] if image.ndim == 3 else image).numpy()


def show_episode(episode: Episode, *, max_query: int = 5,
                 class_names: Sequence[str] | None = None, size: float = 1.0) -> Figure:
    """One row per class: its support images (blue frame), then query images (orange frame).

    Args:
        episode: a classification episode of images ``[n, C, H, W]`` or ``[n, H, W]``.
        max_query: query images shown per class.
        class_names: names indexed by ``episode.classes`` (e.g. ``dataset.class_names``).
        size: inches per image.
    """
    if not episode.is_classification or episode.support_x.ndim not in (3, 4):
        raise ValueError("show_episode needs a classification episode of images")
    if max_query < 0:
        raise ValueError(f"max_query must be >= 0, got {max_query}")
    n_way = episode.n_way
    rows_s = [(episode.support_y == k).nonzero().squeeze(1) for k in range(n_way)]
    rows_q = [(episode.query_y == k).nonzero().squeeze(1)[:max_query] for k in range(n_way)]
    n_cols = max(len(r) for r in rows_s) + max(len(r) for r in rows_q)
    fig, axes = plt.subplots(n_way, n_cols, figsize=(size * n_cols, size * n_way + 0.4),
                             squeeze=False)
    for k in range(n_way):
        cells = [(episode.support_x[i], SUPPORT_COLOUR) for i in rows_s[k].tolist()]
        cells += [(episode.query_x[i], QUERY_COLOUR) for i in rows_q[k].tolist()]
        for j, ax in enumerate(axes[k]):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j >= len(cells):
                continue
            image, colour = cells[j]
            ax.imshow(_as_2d(image), cmap="gray_r", vmin=0, vmax=1)
            ax.add_patch(Rectangle((0, 0), 1, 1, transform=ax.transAxes, fill=False,
                                   edgecolor=colour, linewidth=3))
        label = f"label {k}"
        if episode.classes is not None and class_names is not None:
            label += f"\n{_short(class_names[int(episode.classes[k])])}"
        axes[k][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(f"{n_way}-way episode: support (blue) and query (orange)", fontsize=10)
    fig.tight_layout()
    return fig


def show_images(images: Tensor, *, ncols: int = 10, titles: Sequence[str] | None = None,
                size: float = 1.0) -> Figure:
    """A grid of images ``[n, C, H, W]`` or ``[n, H, W]`` (values in [0, 1] or uint8)."""
    if images.ndim not in (3, 4) or len(images) == 0:
        raise ValueError(f"expected a non-empty [n, C, H, W] or [n, H, W] batch, "
                         f"got {tuple(images.shape)}")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"got {len(titles)} titles for {len(images)} images")
    x = images.float() / 255 if images.dtype == torch.uint8 else images
    nrows = -(-len(x) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows * 1.15),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(x):
            ax.imshow(_as_2d(x[i]), cmap="gray_r", vmin=0, vmax=1)
            if titles is not None:
                ax.set_title(titles[i], fontsize=7)
    fig.tight_layout()
    return fig


def _short(name: str) -> str:
    """'Alphabet_of_the_Magi/character01/rot090' -> 'Alphabet of the Magi\\nchar 01, 90°'."""
    parts = name.split("/")
    if len(parts) == 3 and parts[1].startswith("character") and parts[2].startswith("rot"):
        return f"{parts[0].replace('_', ' ')}\nchar {parts[1][9:]}, {int(parts[2][3:])}°"
    return name
