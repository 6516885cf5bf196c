"""A multi-layer perceptron, e.g. the 1-40-40-1 ReLU network of MAML's sinusoid experiment.

Chapter: MAML (sinusoid regression).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from torch import nn

__all__ = ["MLP"]


class MLP(nn.Sequential):
    """Linear layers with ReLU in between (none after the last).

    Args:
        in_features: input size.
        hidden: sizes of the hidden layers, e.g. ``(40, 40)``.
        out_features: output size.

    Shapes:
        x: ``[..., in_features]`` -> ``[..., out_features]``.
    """

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int) -> None:
        sizes = [in_features, *hidden, out_features]
        if any(not isinstance(s, int) or s < 1 for s in sizes):
            raise ValueError(f"all layer sizes must be positive ints, got {sizes}")
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(itertools.pairwise(sizes)):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        super().__init__(*layers)
