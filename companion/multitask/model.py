"""What the multi-task learner needs from an architecture.

Every architecture here maps an input to a dict ``task name -> output`` and says which of its
parameters are shared between tasks (the ones gradient methods such as PCGrad and MGDA act
on). Architectures with one representation that all tasks read (hard sharing) also expose
``encode`` / ``decode``, which MGDA's upper-bound approximation differentiates through.

Chapter: Multi-task learning (architectures).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from torch import Tensor, nn

__all__ = ["MultiTaskModel", "SharedRepresentationModel"]


@runtime_checkable
class MultiTaskModel(Protocol):
    """An ``nn.Module`` with ``tasks``, ``forward(x, tasks=None)`` and ``shared_parameters()``."""

    tasks: tuple[str, ...]

    def __call__(self, x: Tensor, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Outputs of the requested tasks (default: all)."""
        ...

    def shared_parameters(self) -> dict[str, nn.Parameter]:
        """Parameters more than one task depends on, keyed by their ``named_parameters`` name."""
        ...


@runtime_checkable
class SharedRepresentationModel(MultiTaskModel, Protocol):
    """A model whose tasks all read one representation ``z = encode(x)``."""

    def encode(self, x: Tensor) -> Tensor:
        """The shared representation ``z`` ``[B, ...]``."""
        ...

    def decode(self, z: Tensor, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Task outputs computed from ``z`` only."""
        ...
