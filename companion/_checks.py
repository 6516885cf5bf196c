"""Argument checks shared by the whole package: one wording, one strictness."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

TASKS = ("classification", "regression")


def check_positive_int(name: str, value: object) -> int:
    """``value`` as an int >= 1 (bools are rejected), else a ValueError naming ``name``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def check_non_negative_int(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return value


def check_positive_float(name: str, value: object) -> float:
    if (not isinstance(value, (int, float)) or isinstance(value, bool)
            or not math.isfinite(value) or value <= 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def check_seed(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"seed must be a non-negative int, got {value!r}")
    return value


def generator_from(generator: torch.Generator | None, seed: int | None) -> torch.Generator:
    """Exactly one source of randomness: a CPU ``torch.Generator`` or a seed for a new one."""
    if generator is None and seed is None:
        raise ValueError("pass generator= or seed=: sampling never uses the global RNG")
    if generator is not None and seed is not None:
        raise ValueError("pass either generator= or seed=, not both")
    if generator is not None:
        if generator.device.type != "cpu":
            raise ValueError("generator must be a CPU torch.Generator")
        return generator
    return torch.Generator().manual_seed(check_seed(seed))


def task_loss(task: str) -> Callable[[Tensor, Tensor], Tensor]:
    """Cross-entropy for ``"classification"``, mean squared error for ``"regression"``."""
    if task == "classification":
        return F.cross_entropy
    if task == "regression":
        return F.mse_loss
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")
