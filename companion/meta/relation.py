"""Relation Networks (Sung, Yang, Zhang, Xiang, Torr & Hospedales, 2018).

Instead of a fixed distance, a *relation module* learns to compare: the feature maps of a
class (summed over its shots) and of a query are concatenated along the channels, and a small
CNN maps the pair to a relation score in ``[0, 1]``. Training regresses the scores onto the
one-hot labels with a mean squared error, as in the paper.

Chapter: metric methods. Reference: :cite:t:`sung2018learning`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from companion._checks import check_positive_int
from companion.meta.metric import MetricLearner
from companion.models.conv4 import Conv4, conv_block

__all__ = ["RelationNetwork", "relation_module"]


def relation_module(in_channels: int = 128, hidden_channels: int = 64, hidden_units: int = 8,
                    feature_size: int = 7, norm: str = "batch") -> nn.Sequential:
    """The paper's relation module: two conv blocks, then 8 ReLU units and one sigmoid unit.

    Shapes:
        ``[P, in_channels, feature_size, feature_size]`` -> ``[P, 1]`` in ``[0, 1]``.
    """
    for name, value in (("in_channels", in_channels), ("hidden_channels", hidden_channels),
                        ("hidden_units", hidden_units), ("feature_size", feature_size)):
        check_positive_int(name, value)
    side = feature_size // 2 // 2
    if side < 1:
        raise ValueError(f"feature_size must be >= 4 for two 2x2 poolings, got {feature_size}")
    return nn.Sequential(
        conv_block(in_channels, hidden_channels, norm),
        conv_block(hidden_channels, hidden_channels, norm),
        nn.Flatten(),
        nn.Linear(hidden_channels * side * side, hidden_units),
        nn.ReLU(),
        nn.Linear(hidden_units, 1),
        nn.Sigmoid(),
    )


class RelationNetwork(MetricLearner):
    """Embedding + learned relation module.

    Args:
        encoder: maps ``[n, *input_shape]`` to feature maps ``[n, C, H, W]`` (default: the
            paper's Conv-4 without pooling in the last two blocks, 28x28 -> 64x7x7).
        relation: maps concatenated pairs ``[P, 2C, H, W]`` to scores ``[P, 1]`` in [0, 1]
            (default: :func:`relation_module`).

    Scores are the relation scores themselves; the loss is MSE against one-hot targets.
    """

    def __init__(self, encoder: nn.Module | None = None,
                 relation: nn.Module | None = None) -> None:
        super().__init__()
        self.encoder = encoder if encoder is not None else Conv4(
            norm="batch", pool=(True, True, False, False), flatten=False)
        self.relation = relation if relation is not None else relation_module()

    def _scores(self, support_x: Tensor, support_labels: Tensor, n_way: int,
                query_x: Tensor) -> Tensor:
        n_support, n_query = support_x.shape[0], query_x.shape[0]
        z = self.encoder(torch.cat([support_x, query_x]))  # [n_s + n_q, C, H, W]
        if z.ndim != 4:
            raise ValueError(f"the encoder must return feature maps [n, C, H, W] (e.g. "
                             f"Conv4(flatten=False)), got shape {tuple(z.shape)}")
        feature_shape = z.shape[1:]
        one_hot = F.one_hot(support_labels, n_way).to(z.dtype)  # [n_s, n_way]
        classes = (one_hot.T @ z[:n_support].flatten(1)).view(n_way, *feature_shape)  # sum
        queries = z[n_support:]  # [n_q, C, H, W]
        pairs = torch.cat([classes[None].expand(n_query, *classes.shape),
                           queries[:, None].expand(n_query, n_way, *feature_shape)],
                          dim=2)  # [n_q, n_way, 2C, H, W]
        return self.relation(pairs.flatten(0, 1)).view(n_query, n_way)  # [n_q, n_way]

    def loss(self, scores: Tensor, query_labels: Tensor) -> Tensor:
        """Mean squared error between relation scores and one-hot targets (the paper's loss)."""
        return F.mse_loss(scores, F.one_hot(query_labels, scores.shape[1]).to(scores.dtype))
