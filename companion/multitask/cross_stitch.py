"""Cross-stitch networks (Misra et al., CVPR 2016): soft sharing by learned linear mixing.

Each task has its own tower of stages. After every stage, a cross-stitch unit replaces each
task's activation by a learned linear combination of all tasks' activations at that stage:

    x_i' = sum_j alpha[i, j] * x_j        (alpha: [T, T], one unit per stage)

With ``alpha = I`` the towers are independent networks; the paper initialises the diagonal to
0.9 and the off-diagonal to 0.1 (for two tasks), i.e. mostly task-specific.

Chapter: Multi-task learning (soft sharing). Reference: :cite:t:`misra2016cross`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from companion.multitask._checks import check_tasks, module_dict, select_tasks

__all__ = ["CrossStitchNetwork", "CrossStitchUnit"]


class CrossStitchUnit(nn.Module):
    """Mix ``T`` same-shaped activations with a learned ``[T, T]`` matrix.

    Args:
        n_tasks: ``T``.
        self_weight: initial diagonal ``alpha[i, i]``; the off-diagonal starts at
            ``(1 - self_weight) / (T - 1)`` so every row sums to 1. ``1.0`` is the identity.

    Shapes:
        features: ``T`` tensors of one shape ``[B, ...]`` -> ``T`` tensors ``[B, ...]``.
    """

    def __init__(self, n_tasks: int, *, self_weight: float = 0.9) -> None:
        super().__init__()
        if not isinstance(n_tasks, int) or n_tasks < 1:
            raise ValueError(f"n_tasks must be a positive int, got {n_tasks!r}")
        if not 0.0 <= self_weight <= 1.0:
            raise ValueError(f"self_weight must lie in [0, 1], got {self_weight!r}")
        off = (1.0 - self_weight) / (n_tasks - 1) if n_tasks > 1 else 0.0
        eye = torch.eye(n_tasks)
        self.alpha = nn.Parameter(self_weight * eye + off * (1 - eye))  # [T, T]

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        if len(features) != self.alpha.shape[0]:
            raise ValueError(f"features must hold {self.alpha.shape[0]} tensors (one per task), "
                             f"got {len(features)}")
        if any(f.shape != features[0].shape for f in features):
            raise ValueError("features must all have the same shape to be cross-stitched, got "
                             f"{[tuple(f.shape) for f in features]}")
        stacked = torch.stack(list(features))  # [T, B, ...]
        mixed = torch.einsum("ij,j...->i...", self.alpha, stacked)  # [T, B, ...]
        return list(mixed.unbind(0))


class CrossStitchNetwork(nn.Module):
    """Per-task towers of stages with a cross-stitch unit after every stage, then heads.

    Args:
        towers: task name -> list of stages (modules); every tower has the same number of
            stages and, stage by stage, the same output shape (so they can be mixed).
        heads: task name -> head applied to the tower's last (stitched) activation.
        self_weight: initial diagonal of every unit (1.0: independent towers at start).

    Shapes:
        x: ``[B, ...]`` fed to every tower; output ``{task: [B, ...]}``.
    """

    def __init__(self, towers: Mapping[str, Sequence[nn.Module]],
                 heads: Mapping[str, nn.Module], *, self_weight: float = 0.9) -> None:
        super().__init__()
        tasks = check_tasks(towers.keys(), "towers")
        if set(heads) != set(tasks) or len(heads) != len(tasks):
            raise ValueError(f"heads must have one head per tower {list(tasks)}, "
                             f"got {list(heads)}")
        depths = {t: len(towers[t]) for t in tasks}
        if len(set(depths.values())) != 1 or 0 in depths.values():
            raise ValueError(f"towers must all have the same number (>= 1) of stages, got {depths}")
        self.tasks: tuple[str, ...] = tasks
        self.towers = module_dict({t: nn.ModuleList(towers[t]) for t in tasks}, "towers")
        self.units = nn.ModuleList(CrossStitchUnit(len(tasks), self_weight=self_weight)
                                   for _ in range(depths[tasks[0]]))
        self.heads = module_dict({t: heads[t] for t in tasks}, "heads")

    def forward(self, x: Tensor, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        chosen = select_tasks(self.tasks, tasks)
        feats = [x] * len(self.tasks)
        for k, unit in enumerate(self.units):
            feats = unit([self.towers[t][k](f)  # type: ignore[index]
                          for t, f in zip(self.tasks, feats, strict=True)])
        by_task = dict(zip(self.tasks, feats, strict=True))
        return {t: self.heads[t](by_task[t]) for t in chosen}

    def shared_parameters(self) -> dict[str, nn.Parameter]:
        """Towers and cross-stitch units: every task's output can depend on all of them."""
        return {n: p for n, p in self.named_parameters() if not n.startswith("heads.")}
