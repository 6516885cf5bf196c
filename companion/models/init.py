"""Seeded weight initialisation: PyTorch's default initialisation, drawn from a generator.

``nn.Linear`` and ``nn.Conv2d`` initialise themselves from torch's *global* random number
generator. :func:`init_from_seed` redraws their weights from a private ``torch.Generator``
seeded with ``seed``, with the same distributions (Kaiming-uniform weights with ``a = sqrt(5)``,
biases uniform in ``+-1/sqrt(fan_in)``) and in the same order as construction, so
``Conv4(seed=0)`` equals ``Conv4()`` built right after ``torch.manual_seed(0)``, and the global
generator is not used.

Chapter: Concepts (reproducibility).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import nn

from companion._checks import check_seed
from companion.models.norm import BatchStatNorm2d

__all__ = ["init_from_seed", "keep_global_rng"]


@contextlib.contextmanager
def keep_global_rng(enabled: bool) -> Iterator[None]:
    """Restore torch's global CPU generator afterwards (construction of a seeded model draws
    default weights from it before they are redrawn from the seed)."""
    with torch.random.fork_rng(devices=[], enabled=enabled):
        yield


def init_from_seed(module: nn.Module, seed: int) -> nn.Module:
    """Redraw the weights of every ``nn.Linear`` and ``nn.Conv*`` layer of ``module`` from
    ``torch.Generator().manual_seed(seed)`` with PyTorch's default distributions.

    Other parameters must have a deterministic initialisation (normalisation layers: ones and
    zeros); a layer with parameters of another kind is refused.

    Raises:
        ValueError: a negative or non-int seed, or a parametrised layer of an unknown kind.
    """
    generator = torch.Generator().manual_seed(check_seed(seed))
    with torch.no_grad():
        for name, layer in module.named_modules():
            if isinstance(layer, (nn.Linear, nn.modules.conv._ConvNd)):
                _default_init(layer.weight, layer.bias, generator)
            elif any(True for _ in layer.parameters(recurse=False)) and not _deterministic(layer):
                raise ValueError(f"seed= cannot initialise layer {name!r} "
                                 f"({type(layer).__name__})")
    return module


def _default_init(weight: torch.Tensor, bias: torch.Tensor | None,
                  generator: torch.Generator) -> None:
    """What ``nn.Linear.reset_parameters`` / ``nn.Conv2d.reset_parameters`` do."""
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    if bias is not None:
        fan_in, _ = nn.init._calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        nn.init.uniform_(bias, -bound, bound, generator=generator)


def _deterministic(layer: nn.Module) -> bool:
    """Normalisation layers start at weight 1 and bias 0, with no random numbers."""
    return isinstance(layer, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm,
                              BatchStatNorm2d))
