"""L2-SP: keep fine-tuned weights near their pre-trained starting point.

Weight decay pulls weights towards 0, forgetting what pre-training learnt. L2-SP pulls the
shared (pre-trained) weights ``w_s`` towards their starting point ``w_s^0`` and decays only
the new head ``w_new``:

    Omega(w) = (alpha / 2) ||w_s - w_s^0||^2 + (beta / 2) ||w_new||^2,

    dOmega / dw_s = alpha (w_s - w_s^0),        dOmega / dw_new = beta w_new.

Li et al. use ``alpha = 0.1, beta = 0.01`` (our defaults) or tune them per data set.

Chapter: Transfer learning (parameter-based transfer).
Reference: :cite:t:`li2018explicit`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from companion.transfer._checks import check_non_negative_float

__all__ = ["L2SP"]


class L2SP(nn.Module):
    """The L2-SP penalty, holding a snapshot of the pre-trained weights ``w_s^0`` as buffers.

    Args:
        pretrained: the shared network at its starting point; its parameters are copied now.
        alpha: strength of the pull towards the start (>= 0).
        beta: weight decay of the new head (>= 0).

    Call ``penalty = l2sp(shared, head)`` with the network being fine-tuned (same parameter
    names as ``pretrained``) and the new head (or None).
    """

    def __init__(self, pretrained: nn.Module, *, alpha: float = 0.1, beta: float = 0.01) -> None:
        super().__init__()
        self.alpha = check_non_negative_float("alpha", alpha)
        self.beta = check_non_negative_float("beta", beta)
        self.names = tuple(name for name, _ in pretrained.named_parameters())
        if not self.names:
            raise ValueError("pretrained has no parameters to keep close to")
        for i, (_, p) in enumerate(pretrained.named_parameters()):
            self.register_buffer(f"start{i}", p.detach().clone())

    def start(self) -> dict[str, Tensor]:
        """The snapshot ``w_s^0``, by parameter name."""
        return {name: getattr(self, f"start{i}") for i, name in enumerate(self.names)}

    def _shared(self, shared: nn.Module) -> dict[str, Tensor]:
        params: dict[str, Tensor] = dict(shared.named_parameters())
        if tuple(params) != self.names:
            raise ValueError("shared must have the same parameter names as the pre-trained "
                             f"network: expected {self.names[:3]}..., got {tuple(params)[:3]}...")
        start = self.start()
        for name, p in params.items():
            if p.shape != start[name].shape:
                raise ValueError(f"shared parameter {name} has shape {tuple(p.shape)}, the "
                                 f"pre-trained one {tuple(start[name].shape)}")
        return params

    def forward(self, shared: nn.Module, head: nn.Module | None = None) -> Tensor:
        """``(alpha/2) sum ||w_s - w_s^0||^2 + (beta/2) sum ||w_new||^2`` (a scalar)."""
        start = self.start()
        params = self._shared(shared)
        pull = 0.5 * self.alpha * torch.stack(
            [(p - start[n]).pow(2).sum() for n, p in params.items()]).sum()
        head_params = [] if head is None else list(head.parameters())
        if not head_params:
            return pull
        decay = torch.stack([p.pow(2).sum() for p in head_params]).sum()
        return pull + 0.5 * self.beta * decay

    def gradient(self, shared: nn.Module, head: nn.Module | None = None
                 ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """The closed-form gradients ``alpha (w_s - w_s^0)`` and ``beta w_new``, by name."""
        start = self.start()
        g_shared = {n: self.alpha * (p.detach() - start[n])
                    for n, p in self._shared(shared).items()}
        g_head = {} if head is None else {n: self.beta * p.detach()
                                          for n, p in head.named_parameters()}
        return g_shared, g_head
