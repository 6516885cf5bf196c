"""Prototypical Networks (Snell, Swersky & Zemel, 2017).

Embed the support set, average each class into a *prototype* ``c_k``, and classify a query
``x`` by a softmax over negative distances: ``p(y = k | x) ∝ exp(-d(f(x), c_k))``. With the
squared Euclidean distance this is a linear classifier in the embedding space, with weights
``2 c_k`` and biases ``-||c_k||^2`` (the ``-||f(x)||^2`` term is the same for every class).

Chapter: Concepts (first experiment); metric methods.
Reference: :cite:t:`snell2017prototypical`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from companion.meta.distances import DISTANCES, pairwise_distance
from companion.meta.metric import MetricLearner

__all__ = ["PrototypicalNetwork", "class_prototypes"]


def class_prototypes(embeddings: Tensor, labels: Tensor, n_way: int) -> Tensor:
    """Mean embedding per class.

    Args:
        embeddings: ``[n, d]``.
        labels: ``[n]`` in ``0 .. n_way-1``, every class present.
        n_way: number of classes.

    Returns:
        ``[n_way, d]``.
    """
    if embeddings.ndim != 2 or labels.shape != embeddings.shape[:1]:
        raise ValueError(f"expected embeddings [n, d] and labels [n], got "
                         f"{tuple(embeddings.shape)} and {tuple(labels.shape)}")
    if labels.dtype != torch.int64 or labels.numel() == 0 or int(labels.min()) < 0 or int(
            labels.max()) >= n_way:
        raise ValueError(f"labels must be int64 in 0 .. n_way-1 = {n_way - 1}")
    one_hot = F.one_hot(labels, n_way).to(embeddings.dtype)  # [n, n_way]
    counts = one_hot.sum(0)  # [n_way]
    if (counts == 0).any():
        raise ValueError("every class 0 .. n_way-1 needs at least one support example")
    return (one_hot.T @ embeddings) / counts[:, None]  # [n_way, d]


class PrototypicalNetwork(MetricLearner):
    """A prototypical classifier on top of an embedding network.

    Args:
        encoder: maps ``[n, *input_shape]`` to ``[n, d]`` (e.g. ``Conv4(norm="batch")``).
        distance: ``"squared_euclidean"`` (the paper's choice), ``"euclidean"`` or ``"cosine"``.

    Support and query are embedded in one batch, as in the paper's code (with
    ``nn.BatchNorm2d`` in training mode they share batch statistics; in evaluation mode the
    running statistics are used, so test predictions are not transductive).

    Example:
        >>> net = PrototypicalNetwork(Conv4(norm="batch"))
        >>> scores = net(support_x, support_y, query_x)      # [n_query, n_way]
    """

    def __init__(self, encoder: nn.Module, *, distance: str = "squared_euclidean") -> None:
        super().__init__()
        if not isinstance(encoder, nn.Module):
            raise ValueError(f"encoder must be an nn.Module (e.g. Conv4()), got "
                             f"{type(encoder).__name__}")
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
        self.encoder = encoder
        self.distance = distance

    def _scores(self, support_x: Tensor, support_labels: Tensor, n_way: int,
                query_x: Tensor) -> Tensor:
        n_support = support_x.shape[0]
        z = self.encoder(torch.cat([support_x, query_x])).flatten(1)  # [n_s + n_q, d]
        prototypes = class_prototypes(z[:n_support], support_labels, n_way)  # [n_way, d]
        return -pairwise_distance(z[n_support:], prototypes, self.distance)  # [n_q, n_way]
