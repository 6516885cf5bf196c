"""Normalisation layers for meta-learning.

Chapter: MAML (why BatchNorm needs care under ``torch.func``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from companion._checks import check_positive_float, check_positive_int

__all__ = ["BatchStatNorm2d", "make_norm2d"]

NORMS = ("batch_stats", "batch", "none")


class BatchStatNorm2d(nn.Module):
    """Batch normalisation that always uses the current batch's statistics (no running stats).

    ``y = (x - mean) / sqrt(var + eps) * weight + bias`` with mean and (biased) variance over
    the batch, height and width of each channel, in training and evaluation alike. This is what
    the MAML reference implementation does. It is written out with plain tensor operations so
    that ``torch.func.vmap`` over tasks and second-order gradients are exact; ``F.batch_norm``
    under ``vmap`` gives a slightly wrong second-order meta-gradient (see the MAML chapter).

    Because the statistics come from the batch, a prediction for one query depends on the
    other queries in the batch: evaluation with this layer is *transductive*.

    Shapes:
        x: ``[N, C, H, W]`` -> ``[N, C, H, W]``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        check_positive_int("num_features", num_features)
        check_positive_float("eps", eps)
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.ndim != 4 or x.shape[1] != self.weight.shape[0]:
            raise ValueError(f"expected [N, {self.weight.shape[0]}, H, W], got "
                             f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
        var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)  # [C], [C]
        scale = self.weight * torch.rsqrt(var + self.eps)  # [C]
        shift = self.bias - mean * scale  # [C]
        # (x - mean) / sqrt(var + eps) * weight + bias, as one fused multiply-add over x
        return torch.addcmul(shift[None, :, None, None], x, scale[None, :, None, None])

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


def make_norm2d(kind: str, channels: int) -> nn.Module:
    """``"batch_stats"``: :class:`BatchStatNorm2d`; ``"batch"``: ``nn.BatchNorm2d`` with
    running statistics (non-transductive at evaluation); ``"none"``: identity."""
    if kind == "batch_stats":
        return BatchStatNorm2d(channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")
