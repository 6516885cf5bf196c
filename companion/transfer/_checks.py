"""Argument checks shared by the transfer modules (feature batches, coefficients)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["check_features", "check_non_negative_float", "check_pair"]


def check_non_negative_float(name: str, value: object) -> float:
    """``value`` as a finite float >= 0 (bools rejected), else a ValueError naming ``name``."""
    if (not isinstance(value, (int, float)) or isinstance(value, bool)
            or not math.isfinite(value) or value < 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_features(name: str, x: object, *, min_rows: int = 1) -> Tensor:
    """A ``[n, d]`` floating-point tensor with ``n >= min_rows`` finite rows."""
    if not isinstance(x, Tensor) or x.ndim != 2 or not x.dtype.is_floating_point:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a floating-point tensor [n, d], got {shape}")
    if x.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows (examples), got {x.shape[0]}"
                         + (" (empty batch)" if x.shape[0] == 0 else ""))
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def check_pair(source: object, target: object, *, min_rows: int = 1,
               names: tuple[str, str] = ("source", "target")) -> tuple[Tensor, Tensor]:
    """Two feature batches ``[n_s, d]`` and ``[n_t, d]`` of one size ``d``, device and dtype."""
    s = check_features(names[0], source, min_rows=min_rows)
    t = check_features(names[1], target, min_rows=min_rows)
    if s.shape[1] != t.shape[1]:
        raise ValueError(f"{names[0]} and {names[1]} must have the same feature size, got "
                         f"{s.shape[1]} and {t.shape[1]}")
    if s.device != t.device or s.dtype != t.dtype:
        raise ValueError(f"{names[0]} and {names[1]} must share device and dtype, got "
                         f"{s.device}/{s.dtype} and {t.device}/{t.dtype}")
    return s, t
