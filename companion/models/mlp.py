"""A multi-layer perceptron, e.g. the 1-40-40-1 ReLU network of MAML's sinusoid experiment.

Chapter: MAML (sinusoid regression).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from companion.models.init import init_from_seed, keep_global_rng

__all__ = ["MLP"]


class MLP(nn.Sequential):
    """Linear layers with ReLU in between (none after the last).

    Args:
        in_features: input size.
        hidden: sizes of the hidden layers, e.g. ``(40, 40)``.
        out_features: output size.
        seed: if given, the weights are drawn from ``torch.Generator().manual_seed(seed)``
            (PyTorch's default distributions), so the same seed gives the same network and
            torch's global generator is left untouched; None (default): torch's usual
            initialisation from the global generator.

    Shapes:
        x: ``[..., in_features]`` -> ``[..., out_features]``.
    """

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int, *,
                 seed: int | None = None) -> None:
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
            raise ValueError(f"hidden must be a sequence of layer sizes such as (40, 40), got "
                             f"{hidden!r}")
        sizes = [in_features, *hidden, out_features]
        if any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in sizes):
            raise ValueError(f"all layer sizes must be positive ints, got {sizes}")
        layers: list[nn.Module] = []
        with keep_global_rng(seed is not None):
            for i, (a, b) in enumerate(itertools.pairwise(sizes)):
                layers.append(nn.Linear(a, b))
                if i < len(sizes) - 2:
                    layers.append(nn.ReLU())
        super().__init__(*layers)
        if seed is not None:
            init_from_seed(self, seed)
        self.in_features = in_features

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.ndim < 1 or x.shape[-1] != self.in_features:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must be [..., {self.in_features}] (in_features), got {got}")
        weight = self[0].weight  # the fast weight under functional_call
        if x.dtype != weight.dtype and not torch.is_autocast_enabled(x.device.type):
            raise ValueError(f"x is {x.dtype} but the model's weights are {weight.dtype}: "
                             f"convert x with x.to({weight.dtype}) (or the model with "
                             f".to({x.dtype}))")
        return super().forward(x)
