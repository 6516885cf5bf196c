"""Joint training: one model fitted to the pooled data of all training tasks.

The "pretrained" baseline of the MAML paper's sinusoid experiment (and of Reptile's): it
minimises the average loss over tasks *without* any adaptation, i.e. multi-task learning with
every parameter shared. At test time it is fine-tuned with the same inner steps as MAML, by
wrapping it in ``MAML(model, ...)`` and calling ``adapt``.

Chapter: MAML (sinusoid regression); Reptile.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from companion._checks import task_loss
from companion.data.episode import Episode, EpisodeBatch

__all__ = ["JointTraining"]


class JointTraining(nn.Module):
    """Fit ``model`` to every point of every task in the batch (support and query alike).

    Args:
        model: the network.
        task: ``"classification"`` or ``"regression"``.
    """

    def __init__(self, model: nn.Module, *, task: str = "regression") -> None:
        super().__init__()
        self._loss = task_loss(task)
        self.model = model
        self.task = task

    def meta_loss(self, batch: EpisodeBatch) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss of the shared model on all points of all tasks: no adaptation anywhere."""
        x = torch.cat([batch.support_x, batch.query_x], dim=1).flatten(0, 1)  # [B * n, ...]
        y = torch.cat([batch.support_y, batch.query_y], dim=1).flatten(0, 1)
        loss = self._loss(self.model(x), y)
        return loss, {"joint_loss": loss.detach()}

    @torch.no_grad()
    def predict(self, episode: Episode) -> Tensor:
        """The shared model's prediction for the queries (it ignores the support set)."""
        return self.model(episode.query_x)
