"""GradNorm (Chen et al., ICML 2018): learn loss weights that balance gradient magnitudes.

The task weights ``w_i`` (parameters with their own optimiser) are trained so that the norm of
each weighted task gradient at a chosen shared layer ``W``,

    G_i = || grad_W (w_i L_i) || = |w_i| * || grad_W L_i ||,

tracks a common target scaled by the task's relative inverse training rate:

    Ltilde_i = L_i(t) / L_i(0),   r_i = Ltilde_i / mean_j Ltilde_j,
    target_i = mean_j G_j * r_i^alpha                 (held constant)
    L_grad   = sum_i | G_i - target_i |.

Only ``w`` receives the gradient of ``L_grad``; the network receives the gradient of
``sum_i w_i L_i``. After each step the weights are renormalised to sum to the number of
tasks. ``alpha`` sets how strongly slow tasks are pushed (the paper uses 0.12 to 3.0).

Chapter: Multi-task learning (loss weighting). Reference: :cite:t:`chen2018gradnorm`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

from companion.multitask._checks import check_task_losses, check_tasks

__all__ = ["GradNorm"]


class GradNorm(nn.Module):
    """GradNorm task weights (initialised to 1) and their balancing loss.

    Args:
        tasks: the task names.
        alpha: the asymmetry ``alpha >= 0`` (0: equal gradient norms).

    Example (one training step, see also ``MultiTaskLearner``):
        >>> total = gradnorm.backward(losses, layer=[model.trunk[-1].weight])
        >>> model_optimizer.step(); weight_optimizer.step(); gradnorm.renormalise()
    """

    def __init__(self, tasks: Iterable[str], *, alpha: float = 1.5) -> None:
        super().__init__()
        self.tasks = check_tasks(tasks)
        if not isinstance(alpha, (int, float)) or not 0 <= alpha < float("inf"):
            raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
        self.alpha = float(alpha)
        self.weights = nn.Parameter(torch.ones(len(self.tasks)))  # [T]
        self.register_buffer("initial_losses", torch.full((len(self.tasks),), float("nan")))

    def task_weights(self) -> dict[str, Tensor]:
        return dict(zip(self.tasks, self.weights.detach().unbind(0), strict=True))

    def balance_loss(self, losses: Mapping[str, Tensor], layer: Sequence[Tensor]) -> Tensor:
        """``L_grad`` (a scalar, differentiable w.r.t. ``self.weights`` only).

        The first call records ``L_i(0)``. Keeps the graph of ``losses`` alive.
        """
        checked = check_task_losses(losses, tasks=self.tasks)
        if not layer:
            raise ValueError("layer must hold the parameters of one shared layer")
        stacked = torch.stack(list(checked.values()))  # [T]
        initial = self.get_buffer("initial_losses")
        if bool(torch.isnan(initial).any()):
            if bool((stacked.detach() <= 0).any()):
                raise ValueError(f"losses: GradNorm divides by the first losses L_i(0), which "
                                 f"must be positive, got {stacked.detach().tolist()}")
            initial.copy_(stacked.detach().to(initial))
        norms = torch.stack([
            torch.sqrt(sum((g.pow(2).sum() for g in torch.autograd.grad(
                loss, list(layer), retain_graph=True, allow_unused=True) if g is not None),
                torch.zeros((), device=stacked.device)))
            for loss in checked.values()])  # [T], ||grad_W L_i||
        g_norm = self.weights.abs().to(norms) * norms  # [T], G_i
        ratio = stacked.detach() / initial.to(stacked)  # [T], Ltilde_i
        inverse_rate = ratio / ratio.mean()  # [T], r_i
        target = (g_norm.mean() * inverse_rate.pow(self.alpha)).detach()  # [T]
        return (g_norm - target).abs().sum()

    def backward(self, losses: Mapping[str, Tensor], layer: Sequence[Tensor]) -> Tensor:
        """Set ``self.weights.grad`` to ``d L_grad / d w`` and backpropagate ``sum w_i L_i``.

        Returns:
            The weighted loss ``sum_i w_i L_i`` (detached).
        """
        checked = check_task_losses(losses, tasks=self.tasks)
        (grad_w,) = torch.autograd.grad(self.balance_loss(checked, layer), [self.weights])
        self.weights.grad = grad_w if self.weights.grad is None else self.weights.grad + grad_w
        w = self.weights.detach()
        total = sum((w[i] * loss for i, loss in enumerate(checked.values())),
                    torch.zeros((), device=w.device))
        total.backward()
        return total.detach()

    @torch.no_grad()
    def renormalise(self) -> None:
        """Rescale the weights to sum to the number of tasks (call after each weight step)."""
        total = self.weights.sum()
        if not bool(torch.isfinite(total)) or float(total) <= 0:
            raise ValueError(f"GradNorm weights sum to {float(total)}; lower the weight "
                             "optimiser's learning rate")
        self.weights.mul_(len(self.tasks) / total)
