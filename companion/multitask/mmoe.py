"""Multi-gate Mixture-of-Experts (Ma et al., KDD 2018).

``E`` shared experts, and for each task a softmax gate over them computed from the input:

    g_t(x) = softmax(W_t x)                   [B, E]
    f_t(x) = sum_e g_t(x)[e] * expert_e(x)    [B, d]
    y_t    = tower_t(f_t(x))

Tasks that need different features weight the experts differently, so less related tasks
interfere less than in a single shared trunk.

Chapter: Multi-task learning (architectures). Reference: :cite:t:`ma2018modeling`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from companion.multitask._checks import module_dict, select_tasks

__all__ = ["MMoE"]


class MMoE(nn.Module):
    """Shared experts mixed by one gate per task, then a tower per task.

    Args:
        experts: ``E`` modules, each ``[B, ...] -> [B, d]`` with the same ``d``.
        towers: task name -> tower ``[B, d] -> output``.
        gate_in_features: size of the flattened input ``x.flatten(1)`` the gates read.

    Shapes:
        x: ``[B, ...]``; gates ``{task: [B, E]}`` (rows sum to 1); output ``{task: [B, ...]}``.
    """

    def __init__(self, experts: Sequence[nn.Module], towers: Mapping[str, nn.Module], *,
                 gate_in_features: int) -> None:
        super().__init__()
        if len(experts) < 1:
            raise ValueError("experts must hold at least one module")
        if not isinstance(gate_in_features, int) or gate_in_features < 1:
            raise ValueError(f"gate_in_features must be a positive int, got {gate_in_features!r}")
        self.experts = nn.ModuleList(experts)
        self.towers = module_dict(towers, "towers")
        self.tasks: tuple[str, ...] = tuple(towers)
        self.gates = nn.ModuleDict({t: nn.Linear(gate_in_features, len(experts), bias=False)
                                    for t in self.tasks})
        self.gate_in_features = gate_in_features

    def gate_weights(self, x: Tensor, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        """``{task: [B, E]}`` mixing weights (softmax over experts)."""
        flat = x.flatten(1)  # [B, F]
        if flat.shape[1] != self.gate_in_features:
            raise ValueError(f"x flattens to {flat.shape[1]} features, the gates expect "
                             f"gate_in_features={self.gate_in_features}")
        return {t: torch.softmax(self.gates[t](flat), dim=-1)
                for t in select_tasks(self.tasks, tasks)}

    def expert_outputs(self, x: Tensor) -> Tensor:
        """``[B, E, d]``: every expert's output."""
        outs = [e(x) for e in self.experts]
        if any(o.ndim != 2 or o.shape != outs[0].shape for o in outs):
            raise ValueError(f"experts must all return [B, d] of one shape, got "
                             f"{[tuple(o.shape) for o in outs]}")
        return torch.stack(outs, dim=1)  # [B, E, d]

    def forward(self, x: Tensor, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        gates = self.gate_weights(x, tasks)  # checks the input size first
        experts = self.expert_outputs(x)  # [B, E, d]
        return {t: self.towers[t]((g.unsqueeze(-1) * experts).sum(dim=1))  # [B, d] -> tower
                for t, g in gates.items()}

    def shared_parameters(self) -> dict[str, nn.Parameter]:
        """The experts (gates and towers belong to one task each)."""
        return {n: p for n, p in self.named_parameters() if n.startswith("experts.")}
