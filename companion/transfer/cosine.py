"""The cosine-similarity classifier of Baseline++.

Each class ``k`` has a weight vector ``w_k``; the score of an embedding ``z`` is its scaled
cosine similarity,

    s_k(z) = scale * cos(z, w_k) = scale * <z, w_k> / (||z|| ||w_k||),

so the softmax compares *directions*, which reduces intra-class variation (Chen et al.).
The scale (a temperature) sets how peaked the softmax can get: cosines lie in ``[-1, 1]``.
Chen et al.'s code uses 2 for at most 200 classes and 10 above (:func:`chen_scale`).

Chapter: Transfer learning (few-shot by transfer).
Reference: :cite:t:`chen2019closer`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from companion._checks import check_positive_float, check_positive_int

__all__ = ["CosineClassifier", "chen_scale", "cosine_scores"]


def chen_scale(n_classes: int) -> float:
    """The fixed scale of Chen et al.'s code: 2 for ``n_classes <= 200``, else 10."""
    return 2.0 if check_positive_int("n_classes", n_classes) <= 200 else 10.0


def cosine_scores(z: Tensor, weight: Tensor, scale: float) -> Tensor:
    """``scale * cos(z_i, w_k)``: ``[n, d]``, ``[n_classes, d]`` -> ``[n, n_classes]``.

    A zero vector has cosine 0 with everything (norms are clamped at 1e-12).
    """
    if z.ndim != 2 or weight.ndim != 2 or z.shape[1] != weight.shape[1]:
        raise ValueError(f"z [n, d] and weight [n_classes, d] must agree on d, got "
                         f"{tuple(z.shape)} and {tuple(weight.shape)}")
    return scale * F.normalize(z, dim=1) @ F.normalize(weight, dim=1).T  # [n, n_classes]


class CosineClassifier(nn.Module):
    """A linear layer without bias that scores by scaled cosine similarity.

    Args:
        in_features: embedding size ``d``.
        n_classes: number of classes.
        scale: the fixed scale (> 0); None -> :func:`chen_scale`.

    Shapes:
        ``[n, d] -> [n, n_classes]``.
    """

    def __init__(self, in_features: int, n_classes: int, *, scale: float | None = None) -> None:
        super().__init__()
        check_positive_int("in_features", in_features)
        self.scale = (chen_scale(n_classes) if scale is None
                      else check_positive_float("scale", scale))
        self.weight = nn.Parameter(torch.empty(n_classes, in_features))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)  # nn.Linear's initialisation

    def forward(self, z: Tensor) -> Tensor:
        return cosine_scores(z, self.weight, self.scale)

    def extra_repr(self) -> str:
        n, d = self.weight.shape
        return f"in_features={d}, n_classes={n}, scale={self.scale}"
