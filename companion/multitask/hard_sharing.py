"""Hard parameter sharing: one shared trunk, one head per task (Caruana, 1997).

The classic multi-task network: every task reads the same representation ``z = trunk(x)``
and has its own output layer(s). All trunk parameters are shared.

Chapter: Multi-task learning (architectures). References: :cite:t:`caruana1997multitask`,
:cite:t:`ruder2017overview`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor, nn

from companion.multitask._checks import module_dict, select_tasks

__all__ = ["HardSharing"]


class HardSharing(nn.Module):
    """A shared trunk with one head per task.

    Args:
        trunk: any backbone, ``[B, ...] -> [B, ...]`` (e.g. ``Conv4`` or ``MLP``).
        heads: task name -> head, applied to the trunk's output.

    Shapes:
        x: whatever the trunk takes, ``[B, ...]``; output ``{task: heads[task](trunk(x))}``.

    Example:
        >>> model = HardSharing(MLP(10, [32], 32), {"a": nn.Linear(32, 3), "b": nn.Linear(32, 1)})
        >>> {t: y.shape for t, y in model(torch.randn(4, 10)).items()}
        {'a': torch.Size([4, 3]), 'b': torch.Size([4, 1])}
    """

    def __init__(self, trunk: nn.Module, heads: Mapping[str, nn.Module]) -> None:
        super().__init__()
        if not isinstance(trunk, nn.Module):
            raise ValueError(f"trunk must be an nn.Module, got {type(trunk).__name__}")
        self.trunk = trunk
        self.heads = module_dict(heads, "heads")
        self.tasks: tuple[str, ...] = tuple(heads)

    def encode(self, x: Tensor) -> Tensor:
        """The shared representation ``z = trunk(x)``."""
        return self.trunk(x)

    def decode(self, z: Tensor, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        """``{task: head(z)}`` for the requested tasks (default: all)."""
        return {t: self.heads[t](z) for t in select_tasks(self.tasks, tasks)}

    def forward(self, x: Tensor, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        return self.decode(self.encode(x), tasks)

    def shared_parameters(self) -> dict[str, nn.Parameter]:
        """The trunk's parameters, named as in ``self.named_parameters()``."""
        return {f"trunk.{n}": p for n, p in self.trunk.named_parameters()}
