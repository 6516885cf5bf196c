"""Small deterministic models and batches for the multi-task tests (no global seeding)."""

from __future__ import annotations

import torch
from torch import nn


def reinit(module: nn.Module, seed: int = 0, scale: float = 0.5) -> nn.Module:
    """Overwrite every parameter with seeded normal values (tests never seed the global RNG)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g))
    return module


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
