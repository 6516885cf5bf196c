"""Plot helpers draw what they are given and reject what they cannot draw."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
import torch

from companion.data import Episode, EpisodeSampler
from companion.plotting import show_episode, show_images


def test_show_episode_layout(tiny_dataset):
    ep = EpisodeSampler(tiny_dataset, n_way=3, n_shot=2, n_query=4, seed=0).sample()
    fig = show_episode(ep, max_query=3, class_names=tiny_dataset.class_names)
    axes = fig.get_axes()
    assert len(axes) == 3 * (2 + 3)
    assert sum(len(ax.images) for ax in axes) == 15
    assert axes[0].get_ylabel().startswith("label 0\nclass")
    plt.close(fig)


def test_show_episode_rejects_regression():
    ep = Episode(torch.randn(3, 1), torch.randn(3, 1), torch.randn(3, 1), torch.randn(3, 1))
    with pytest.raises(ValueError, match="classification"):
        show_episode(ep)


def test_show_images_grid_and_errors():
    fig = show_images(torch.randint(0, 256, (7, 1, 8, 8), dtype=torch.uint8), ncols=3,
                      titles=list("abcdefg"))
    assert len(fig.get_axes()) == 9 and sum(len(a.images) for a in fig.get_axes()) == 7
    plt.close(fig)
    with pytest.raises(ValueError, match="titles"):
        show_images(torch.rand(2, 8, 8), titles=["a"])
    with pytest.raises(ValueError, match="non-empty"):
        show_images(torch.rand(0, 8, 8))
