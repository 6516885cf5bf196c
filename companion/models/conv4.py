"""Conv-4: the standard few-shot backbone of Vinyals et al. (2016), Snell et al. and Finn et al.

Four blocks of [3x3 convolution with 64 filters, normalisation, ReLU, 2x2 max-pooling]. A
28x28 Omniglot image becomes a 64-dimensional embedding (28 -> 14 -> 7 -> 3 -> 1).

Chapter: Concepts; MAML; metric methods. Reference: :cite:t:`vinyals2016matching`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from companion._checks import check_bool, check_positive_int
from companion.models.init import init_from_seed, keep_global_rng
from companion.models.norm import make_norm2d

__all__ = ["Conv4", "conv_block", "load_state_dict_by_position"]


def conv_block(in_channels: int, out_channels: int, norm: str,
               pool: bool = True) -> nn.Sequential:
    """[conv3x3 (padding 1), norm, ReLU, maxpool 2x2]; pooling halves height and width
    (rounding down)."""
    check_positive_int("in_channels", in_channels)
    check_positive_int("out_channels", out_channels)
    check_bool("pool", pool)
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
        seed: if given, the weights are drawn from ``torch.Generator().manual_seed(seed)``
            (PyTorch's default distributions; see :func:`companion.models.init.init_from_seed`),
            so the same seed gives the same network and torch's global generator is left
            untouched. None (default): torch's usual initialisation from the global generator.

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
        seed: int | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("hidden_channels", hidden_channels),
                            ("image_size", image_size)):
            check_positive_int(name, value)
        if n_classes is not None and (not isinstance(n_classes, int)
                                      or isinstance(n_classes, bool) or n_classes < 1):
            raise ValueError(f"n_classes must be a positive int or None, got {n_classes!r}")
        if (not isinstance(pool, (tuple, list)) or len(pool) != 4
                or not all(isinstance(p, bool) for p in pool)):
            raise ValueError(f"pool needs one True/False flag per block (4), got {pool!r}")
        check_bool("flatten", flatten)
        if not flatten and n_classes is not None:
            raise ValueError("flatten=False returns feature maps; it cannot have a head")
        side = image_size
        for p in pool:
            side = side // 2 if p else side
        if side < 1:
            raise ValueError(f"image_size={image_size} is too small for {sum(pool)} 2x2 "
                             "poolings")
        channels = [in_channels] + [hidden_channels] * 4
        self.feature_shape = (hidden_channels, side, side)
        self.embedding_dim = hidden_channels * side * side
        with keep_global_rng(seed is not None):
            blocks = [conv_block(c_in, c_out, norm, p) for (c_in, c_out), p in
                      zip(itertools.pairwise(channels), pool, strict=True)]
            self.features = nn.Sequential(*blocks, nn.Flatten() if flatten else nn.Identity())
            self.head = nn.Linear(self.embedding_dim, n_classes) if n_classes else None
        if seed is not None:
            init_from_seed(self, seed)
        self.in_channels = in_channels
        self.image_size = image_size

    def _first_conv(self) -> nn.Conv2d:
        block = self.features[0]
        assert isinstance(block, nn.Sequential) and isinstance(block[0], nn.Conv2d)
        return block[0]

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            raise ValueError(f"x must be a tensor of images, got {type(x).__name__}")
        if x.ndim != 4 or x.shape[1:] != (self.in_channels, self.image_size, self.image_size):
            raise ValueError(f"expected [N, {self.in_channels}, {self.image_size}, "
                             f"{self.image_size}] images, got {tuple(x.shape)}")
        weight = self._first_conv().weight  # the fast weight under functional_call
        if x.dtype != weight.dtype and not torch.is_autocast_enabled(x.device.type):
            raise ValueError(f"x is {x.dtype} but the model's weights are {weight.dtype}: "
                             f"convert the images with x.to({weight.dtype}) (or the model "
                             f"with .to({x.dtype}))")
        if x.device != weight.device:
            raise ValueError(f"x is on {x.device} but the model is on {weight.device}: move "
                             "one of them")
        z = self.features(x)  # [N, embedding_dim]
        return self.head(z) if self.head is not None else z


_RUNNING_STATS = ("running_mean", "running_var", "num_batches_tracked")


def load_state_dict_by_position(model: nn.Module, state_dict: Mapping[str, Tensor]) -> None:
    """Copy weights into ``model`` by position, whatever the source's parameter names.

    A Conv-4 written as one flat ``nn.Sequential`` (``0.weight, 0.bias, 1.weight, ...``, the
    usual nesting of other libraries) has the same tensors in the same order as
    :class:`Conv4` (``features.0.0.weight, ...``, ``head.weight``): convolution weight and
    bias, normalisation weight and bias, per block, then the linear head. This pairs the
    ``i``-th tensor of ``state_dict`` with the ``i``-th entry of ``model.state_dict()``.
    BatchNorm running statistics (``running_mean``, ``running_var``,
    ``num_batches_tracked``) on either side are skipped when the other side has none (a
    ``BatchStatNorm2d`` keeps no statistics).

    Example:
        >>> theirs = nn.Sequential(nn.Conv2d(1, 64, 3, padding=1), nn.BatchNorm2d(64), ...)
        >>> net = Conv4(n_classes=5)
        >>> load_state_dict_by_position(net, theirs.state_dict())

    Args:
        model: the receiving network (e.g. a :class:`Conv4`); changed in place.
        state_dict: the source tensors, in the source network's registration order.

    Raises:
        ValueError: a different number of tensors, or a pair of tensors whose shapes differ
            (the message names both).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"state_dict must be a mapping of names to tensors, got "
                         f"{type(state_dict).__name__}")
    target = model.state_dict()

    def has_stats(names: Mapping[str, object]) -> bool:
        return any(n.rsplit(".", 1)[-1] in _RUNNING_STATS for n in names)

    keep_stats = has_stats(target) and has_stats(state_dict)
    source = [(k, v) for k, v in state_dict.items()
              if keep_stats or k.rsplit(".", 1)[-1] not in _RUNNING_STATS]
    mine = [k for k in target if keep_stats or k.rsplit(".", 1)[-1] not in _RUNNING_STATS]
    if len(source) != len(mine):
        raise ValueError(f"state_dict has {len(source)} tensors to copy but the model has "
                         f"{len(mine)}: {[k for k, _ in source]} vs {mine}")
    bad = [f"{theirs} {tuple(getattr(v, 'shape', ()))} -> {ours} {tuple(target[ours].shape)}"
           for (theirs, v), ours in zip(source, mine, strict=True)
           if not isinstance(v, Tensor) or v.shape != target[ours].shape]
    if bad:
        raise ValueError(f"state_dict tensors do not match the model by position: {bad}")
    model.load_state_dict({ours: v for (_, v), ours in zip(source, mine, strict=True)},
                          strict=keep_stats or not has_stats(target))
