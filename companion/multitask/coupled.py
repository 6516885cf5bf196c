"""Soft sharing by an L2 penalty between task towers (Duong et al., ACL 2015).

Every task has its own network of the same architecture; nothing is shared, but the
distance between corresponding parameters is penalised so the towers stay close:

    penalty = sum_{i < j} sum_k || theta_i^k - theta_j^k ||^2

summed over task pairs ``(i, j)`` and the coupled parameters ``k``. The learner adds
``coupling * penalty`` to the training loss (``MultiTaskConfig.coupling``).

Chapter: Multi-task learning (soft sharing). Reference: :cite:t:`duong2015low`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from companion.multitask._checks import module_dict, select_tasks

__all__ = ["L2CoupledTowers"]


class L2CoupledTowers(nn.Module):
    """One tower per task, coupled by :meth:`coupling_penalty`.

    Args:
        towers: task name -> network; all with the same parameter names and shapes.
        coupled: prefixes of the parameter names to couple (e.g. ``("0.", "2.")`` for the
            first layers of an ``nn.Sequential``); default all. Duong et al. leave the output
            layers uncoupled.

    Shapes:
        x: ``[B, ...]``; output ``{task: towers[task](x)}``.
    """

    def __init__(self, towers: Mapping[str, nn.Module], *,
                 coupled: Sequence[str] | None = None) -> None:
        super().__init__()
        self.towers = module_dict(towers, "towers")
        self.tasks: tuple[str, ...] = tuple(towers)
        shapes = {t: {n: p.shape for n, p in m.named_parameters()} for t, m in towers.items()}
        first = shapes[self.tasks[0]]
        for t in self.tasks[1:]:
            if shapes[t] != first:
                raise ValueError(f"towers must share one architecture: {t!r} has other parameter "
                                 f"names or shapes than {self.tasks[0]!r}")
        prefixes = tuple(coupled) if coupled is not None else ("",)
        self.coupled: tuple[str, ...] = tuple(n for n in first if n.startswith(prefixes))
        if not self.coupled:
            raise ValueError(f"coupled={coupled!r} selects none of the parameters {list(first)}")

    def forward(self, x: Tensor, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        return {t: self.towers[t](x) for t in select_tasks(self.tasks, tasks)}

    def coupling_penalty(self) -> Tensor:
        """Sum over task pairs and coupled parameters of the squared L2 distance (a scalar)."""
        params = [dict(self.towers[t].named_parameters()) for t in self.tasks]
        device = params[0][self.coupled[0]].device
        total = torch.zeros((), device=device)
        for i in range(len(params)):
            for j in range(i + 1, len(params)):
                for name in self.coupled:
                    total = total + (params[i][name] - params[j][name]).pow(2).sum()
        return total

    def shared_parameters(self) -> dict[str, nn.Parameter]:
        """None: each task has its own parameters (sharing is only through the penalty)."""
        return {}
