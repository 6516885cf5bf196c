"""Conv-4: the standard few-shot backbone of Vinyals et al. (2016), Snell et al. and Finn et al.

Four blocks of [3x3 convolution with 64 filters, normalisation, ReLU, 2x2 max-pooling]. A
28x28 Omniglot image becomes a 64-dimensional embedding (28 -> 14 -> 7 -> 3 -> 1).

Chapter: Concepts; MAML; metric methods. Reference: :cite:t:`vinyals2016matching`.
"""

from __future__ import annotations

import itertools

from torch import Tensor, nn

from companion.models.norm import make_norm2d

__all__ = ["Conv4", "conv_block"]


def conv_block(in_channels: int, out_channels: int, norm: str,
               pool: bool = True) -> nn.Sequential:
    """[conv3x3 (padding 1), norm, ReLU, maxpool 2x2]; pooling halves height and width
    (rounding down)."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        make_norm2d(norm, out_channels),
        nn.ReLU(),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class Conv4(nn.Module):
    """Four conv blocks, then flatten; optionally a linear classification head.

    Args:
        in_channels: image channels (1 for Omniglot and MNIST).
        hidden_channels: filters per block (64 in the papers).
        n_classes: if given, a linear head maps the embedding to ``n_classes`` logits
            (MAML's classifier); if None the module returns the embedding (metric methods).
        image_size: input side length, used to compute the embedding size.
        norm: ``"batch_stats"`` (default; batch statistics always, safe under ``torch.func``),
            ``"batch"`` (``nn.BatchNorm2d`` with running statistics) or ``"none"``.
        pool: whether each of the four blocks max-pools (Relation Networks: the last two
            do not).
        flatten: return ``[N, embedding_dim]`` (default) or the feature maps
            ``[N, *feature_shape]`` (needs ``n_classes=None``).

    Shapes:
        x: ``[N, in_channels, image_size, image_size]`` -> ``[N, embedding_dim]``,
        ``[N, n_classes]`` or ``[N, *feature_shape]``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        hidden_channels: int = 64,
        n_classes: int | None = None,
        *,
        image_size: int = 28,
        norm: str = "batch_stats",
        pool: tuple[bool, bool, bool, bool] = (True, True, True, True),
        flatten: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("hidden_channels", hidden_channels),
                            ("image_size", image_size)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if n_classes is not None and n_classes < 1:
            raise ValueError(f"n_classes must be >= 1 or None, got {n_classes}")
        if len(pool) != 4:
            raise ValueError(f"pool needs one flag per block (4), got {pool!r}")
        if not flatten and n_classes is not None:
            raise ValueError("flatten=False returns feature maps; it cannot have a head")
        channels = [in_channels] + [hidden_channels] * 4
        blocks = [conv_block(c_in, c_out, norm, p)
                  for (c_in, c_out), p in zip(itertools.pairwise(channels), pool, strict=True)]
        self.features = nn.Sequential(*blocks, nn.Flatten() if flatten else nn.Identity())
        side = image_size
        for p in pool:
            side = side // 2 if p else side
        if side < 1:
            raise ValueError(f"image_size={image_size} is too small for {sum(pool)} 2x2 "
                             "poolings")
        self.feature_shape = (hidden_channels, side, side)
        self.embedding_dim = hidden_channels * side * side
        self.head = nn.Linear(self.embedding_dim, n_classes) if n_classes else None
        self.image_size = image_size

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise ValueError(f"expected [N, C, {self.image_size}, {self.image_size}] images, "
                             f"got {tuple(x.shape)}")
        z = self.features(x)  # [N, embedding_dim]
        return self.head(z) if self.head is not None else z
