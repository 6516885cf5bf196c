"""Nearest-neighbour classification of an episode in a fixed embedding space.

With the identity embedding this is the classic few-shot baseline "nearest neighbour on raw
pixels"; with a trained encoder it measures how good that encoder's space is.

Chapter: Concepts (first experiment).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from companion.meta.distances import DISTANCES, pairwise_distance
from companion.meta.metric import MetricLearner

__all__ = ["NearestNeighbour"]


class NearestNeighbour(MetricLearner):
    """1-nearest-neighbour: the score of class ``k`` is minus the distance to its nearest shot.

    Args:
        encoder: embedding applied to support and query (default: flatten the pixels).
            :func:`companion.evaluate` puts it in ``eval()`` mode while scoring.
        distance: one of ``"squared_euclidean"``, ``"euclidean"``, ``"cosine"``.

    It has nothing to train: ``meta_loss`` is inherited but only meaningful if the encoder
    is trainable.
    """

    def __init__(self, encoder: nn.Module | None = None, *, distance: str = "euclidean") -> None:
        super().__init__()
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
        self.encoder = encoder if encoder is not None else nn.Flatten()
        self.distance = distance

    def _scores(self, support_x: Tensor, support_labels: Tensor, n_way: int,
                query_x: Tensor) -> Tensor:
        """``-min_{i: y_i = k} d(f(x), f(x_i))`` for every query and class."""
        zs = self.encoder(support_x).flatten(1)  # [n_s, d]
        zq = self.encoder(query_x).flatten(1)  # [n_q, d]
        d = pairwise_distance(zq, zs, self.distance)  # [n_q, n_s]
        scores = torch.full((d.shape[0], n_way), float("inf"), device=d.device, dtype=d.dtype)
        index = support_labels[None, :].expand_as(d)  # [n_q, n_s]
        return -scores.scatter_reduce(1, index, d, reduce="amin")  # [n_q, n_way]
