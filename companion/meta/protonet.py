"""Prototypical Networks (Snell, Swersky & Zemel, 2017).

Embed the support set, average each class into a *prototype* ``c_k``, and classify a query
``x`` by a softmax over negative distances: ``p(y = k | x) ∝ exp(-d(f(x), c_k))``.

Chapter: Concepts (first experiment); metric methods. Reference: :cite:t:`snell2017prototypical`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from companion.data.episode import Episode, EpisodeBatch
from companion.meta.distances import DISTANCES, pairwise_distance
from companion.training import accuracy

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
    one_hot = F.one_hot(labels, n_way).to(embeddings.dtype)  # [n, n_way]
    counts = one_hot.sum(0)  # [n_way]
    if (counts == 0).any():
        raise ValueError("every class 0 .. n_way-1 needs at least one support example")
    return (one_hot.T @ embeddings) / counts[:, None]  # [n_way, d]


class PrototypicalNetwork(nn.Module):
    """A prototypical classifier on top of an embedding network.

    Args:
        encoder: maps ``[n, *input_shape]`` to ``[n, d]`` (e.g. ``Conv4()``).
        distance: ``"squared_euclidean"`` (the paper's choice), ``"euclidean"`` or ``"cosine"``.

    Example:
        >>> net = PrototypicalNetwork(Conv4(norm="batch"))
        >>> logits = net(episode)            # [n_query_total, n_way]
    """

    def __init__(self, encoder: nn.Module, *, distance: str = "squared_euclidean") -> None:
        super().__init__()
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
        self.encoder = encoder
        self.distance = distance

    def forward(self, episode: Episode) -> Tensor:
        """Query logits ``[n_query_total, n_way]`` (negative distances to the prototypes)."""
        n_support = episode.support_x.shape[0]
        z = self.encoder(torch.cat([episode.support_x, episode.query_x]))  # [n_s + n_q, d]
        protos = class_prototypes(z[:n_support], episode.support_y, episode.n_way)  # [n_way, d]
        return -pairwise_distance(z[n_support:], protos, self.distance)  # [n_q, n_way]

    def meta_loss(self, batch: EpisodeBatch) -> tuple[Tensor, dict[str, Tensor]]:
        """Mean cross-entropy on the query sets of the batch's tasks, and their accuracy."""
        losses, accs = [], []
        for episode in batch:
            logits = self(episode)
            losses.append(F.cross_entropy(logits, episode.query_y))
            accs.append(accuracy(logits.detach(), episode.query_y))
        return torch.stack(losses).mean(), {"accuracy": torch.stack(accs).mean()}

    @torch.no_grad()
    def predict(self, episode: Episode) -> Tensor:
        return self(episode)
