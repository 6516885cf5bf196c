"""Mistake: prototypes in a CPU tensor, labels assumed to be ``0..N-1``, unsquared distances.

The mistaken snippet::

    prototypes = torch.zeros(n_way, dim)                 # 1. always on the CPU, always float32
    for c in range(n_way):                               # 2. assumes labels are 0 .. n_way-1
        prototypes[c] = embeddings[labels == c].mean(0)
    logits = -torch.cdist(query, prototypes)             # 3. Euclidean, not squared

Symptoms a reader sees:

1. On a GPU: ``RuntimeError: Expected all tensors to be on the same device`` at the distance,
   or a silent copy to the CPU and back every episode (and float64 embeddings are rounded to
   float32).
2. With the episode's original class ids (e.g. ``[7, 3, 7, 3]``) the loop averages empty
   selections: the prototypes are NaN, the loss is NaN and the accuracy is at chance.
3. ``-||q - c||`` instead of ``-||q - c||^2``: the predicted class is the same (the softmax of
   either is largest at the nearest prototype), but the probabilities, the loss and its gradient
   differ. With the squared distance (Snell et al., 2017, Sec. 2.4) the classifier is linear in
   the query, ``2 c.q - |c|^2`` up to a per-query constant, and the class mean is the right
   prototype (a Bregman divergence); the unsquared distance has neither property.

Corrected: remap the labels (``torch.unique(..., return_inverse=True)``), allocate on the
embeddings' device and dtype, use the squared distance
(:func:`companion.meta.distances.pairwise_distance`, :class:`companion.meta.PrototypicalNetwork`).

Chapter: Applications, open problems and FAQ (the clinic); metric learning. References:
:cite:t:`snell2017prototypical`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from companion.meta.distances import pairwise_distance

__all__ = [
    "correct_buffer",
    "correct_logits",
    "correct_prototypes",
    "mistaken_buffer",
    "mistaken_logits",
    "mistaken_prototypes",
]


def mistaken_buffer(embeddings: Tensor, n_way: int) -> Tensor:
    """MISTAKEN (bug 1): ``torch.zeros`` with the default device and dtype."""
    return torch.zeros(n_way, embeddings.shape[1])


def correct_buffer(embeddings: Tensor, n_way: int) -> Tensor:
    """CORRECTED: the embeddings' device and dtype."""
    return embeddings.new_zeros(n_way, embeddings.shape[1])


def mistaken_prototypes(embeddings: Tensor, labels: Tensor, n_way: int) -> Tensor:
    """MISTAKEN (bugs 1 and 2): ``[n_way, d]`` means of classes ``0 .. n_way-1``."""
    prototypes = mistaken_buffer(embeddings, n_way)
    for c in range(n_way):
        prototypes[c] = embeddings[labels == c].mean(0)
    return prototypes


def correct_prototypes(embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """CORRECTED: the classes present (sorted) and their mean embeddings.

    Returns:
        ``classes [n_way]`` (the original label of each row) and ``prototypes [n_way, d]``.
    """
    classes, index = torch.unique(labels, sorted=True, return_inverse=True)  # [n_way], [n]
    sums = correct_buffer(embeddings, classes.numel()).index_add_(0, index, embeddings)
    counts = torch.bincount(index, minlength=classes.numel()).to(embeddings.dtype)  # [n_way]
    return classes, sums / counts[:, None]


def mistaken_logits(query: Tensor, prototypes: Tensor) -> Tensor:
    """MISTAKEN (bug 3): minus the Euclidean distance, ``[n_query, n_way]``."""
    return -torch.cdist(query, prototypes)


def correct_logits(query: Tensor, prototypes: Tensor) -> Tensor:
    """CORRECTED: minus the squared Euclidean distance, ``[n_query, n_way]``."""
    return -pairwise_distance(query, prototypes, "squared_euclidean")
