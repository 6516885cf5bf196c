"""Plain supervised learning as a learner of the shared loop.

:class:`SupervisedLearner` turns any network into something :func:`companion.fit` trains on
:class:`~companion.data.LabelledBatch` batches (e.g. from a
:class:`~companion.data.BatchSampler`): cross-entropy for classification, mean squared error
for regression. Pre-training for transfer, single-task baselines and fine-tuning all use it.

Chapter: Concepts (pre-training baseline); transfer learning; multi-task learning.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from companion._checks import task_loss
from companion.data.batches import LabelledBatch
from companion.engine.evaluation import prediction_metrics
from companion.metrics import accuracy

__all__ = ["SupervisedLearner"]


class SupervisedLearner(nn.Module):
    """Minimise the loss of ``model`` on labelled batches.

    Args:
        model: maps ``[n, *input_shape]`` to ``[n, n_classes]`` logits (classification) or
            ``[n, *target_shape]`` predictions (regression).
        task: ``"classification"`` (cross-entropy; logs accuracy) or ``"regression"`` (MSE).

    Example:
        >>> learner = SupervisedLearner(Conv4(n_classes=964))
        >>> fit(learner, BatchSampler(load_omniglot("train"), seed=0),
        ...     torch.optim.Adam(learner.parameters()), iterations=500, batch_size=128)
    """

    def __init__(self, model: nn.Module, *,
                 task: Literal["classification", "regression"] = "classification") -> None:
        super().__init__()
        self.loss_fn = task_loss(task)
        self.model = model
        self.task = task

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def training_loss(self, batch: LabelledBatch) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss on the batch, and its accuracy (classification) for the history."""
        if not isinstance(batch, LabelledBatch):
            raise ValueError(f"batch must be a LabelledBatch (e.g. from BatchSampler), got "
                             f"{type(batch).__name__}")
        out = self.model(batch.x)  # [n, n_classes] or [n, ...]
        loss = self.loss_fn(out, batch.y)
        if self.task == "classification":
            return loss, {"accuracy": accuracy(out.detach(), batch.y)}
        return loss, {}

    def evaluation_metrics(self, batch: LabelledBatch) -> dict[str, Tensor]:
        """Accuracy (classification) or MSE (regression) of one held-out batch."""
        return prediction_metrics(self.model(batch.x), batch.y)
