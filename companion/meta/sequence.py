"""The interface shared by the black-box (model-based) learners: read the episode, predict.

A black-box learner has no inner optimisation and no fixed metric: a network reads the
support set (inputs with their labels) and the queries (inputs without labels) and outputs
the queries' predictions. Every method here implements one function,
``_outputs(support_x, support_y, query_x)`` on a batch of tasks, and inherits:

* ``forward(support_x, support_y, query_x)`` for one episode, with support labels of *any*
  integer values (remapped to ``0 .. n_way-1`` in sorted order, as the metric learners do);
* ``meta_loss(batch)``, ``predict(episode)`` and ``evaluation_metrics(episode)`` for
  :func:`companion.fit` and :func:`companion.evaluate`;
* the checks: at most ``max_ways`` classes, at most ``max_support`` support items (the longest
  sequence the model is built and trained for), no NaN or inf inputs.

The query labels are never an input: ``predict`` and ``forward`` do not take them, and
``meta_loss`` uses them only in the loss.

Chapter: Model-based meta-learning. Reference: :cite:t:`santoro2016meta`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from companion._checks import TASKS, check_positive_int
from companion.data.episode import Episode, EpisodeBatch
from companion.meta.label_inputs import HIDDEN
from companion.meta.metric import remap_labels
from companion.metrics import accuracy as metric_accuracy

__all__ = ["SequenceLearner"]


class SequenceLearner(nn.Module, ABC):
    """Base class of the black-box learners (see the module docstring).

    Args:
        max_ways: classes the output layer has (classification), i.e. the largest ``n_way``.
        max_support: the largest support set (``n_way * n_shot``) the model accepts.
        task: ``"classification"`` (integer labels, cross-entropy) or ``"regression"`` (float
            targets ``[n, y_dim]``, mean squared error).
    """

    def __init__(self, *, max_ways: int, max_support: int,
                 task: str = "classification") -> None:
        super().__init__()
        self.max_ways = check_positive_int("max_ways", max_ways)
        self.max_support = check_positive_int("max_support", max_support)
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        self.task = task

    @abstractmethod
    def _outputs(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        """Query outputs of a batch of tasks.

        Args:
            support_x: ``[T, n_support, *input_shape]``.
            support_y: ``[T, n_support]`` labels in ``0 .. max_ways-1`` (classification) or
                ``[T, n_support, y_dim]`` targets (regression).
            query_x: ``[T, n_query, *input_shape]``.

        Returns:
            ``[T, n_query, max_ways]`` logits or ``[T, n_query, y_dim]`` predictions.
        """

    # ------------------------------------------------------------------ checks and outputs

    def _checked_outputs(self, support_x: Tensor, support_y: Tensor, query_x: Tensor,
                         n_way: int | None) -> Tensor:
        """Check sizes and values, then ``[T, n_query, n_way or y_dim]`` outputs."""
        n_support = support_x.shape[1]
        if n_support > self.max_support:
            raise ValueError(f"n_support (n_way * n_shot) = {n_support} exceeds the model's "
                             f"max_support={self.max_support}")
        if n_way is not None and n_way > self.max_ways:
            raise ValueError(f"n_way={n_way} exceeds the model's max_ways={self.max_ways}")
        for name, t in (("support_x", support_x), ("support_y", support_y),
                        ("query_x", query_x)):
            if t.dtype.is_floating_point and not torch.isfinite(t).all():
                raise ValueError(f"{name} contains NaN or inf")
        out = self._outputs(support_x, support_y, query_x)
        return out if n_way is None else out[..., :n_way]

    def _check_task(self, support_y: Tensor) -> None:
        is_cls = not support_y.dtype.is_floating_point
        if is_cls != (self.task == "classification"):
            raise ValueError(f"task={self.task!r} but support_y has "
                             f"{'integer labels' if is_cls else 'float targets'}")

    # ------------------------------------------------------------------ the learner protocol

    def forward(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        """Predictions for one episode's queries.

        Args:
            support_x: ``[n_support, *input_shape]``.
            support_y: ``[n_support]`` integer labels (any values >= 0; columns of the result
                are the sorted distinct labels) or ``[n_support, y_dim]`` targets.
            query_x: ``[n_query, *input_shape]``.

        Returns:
            ``[n_query, n_way]`` scores, or ``[n_query, y_dim]`` predictions.
        """
        self._check_task(support_y)
        if support_x.ndim < 2 or support_x.shape[0] != support_y.shape[0]:
            raise ValueError(f"support_x {tuple(support_x.shape)} and support_y "
                             f"{tuple(support_y.shape)} need the same number of items")
        if support_x.shape[1:] != query_x.shape[1:]:
            raise ValueError(f"support and query inputs differ in shape: "
                             f"{tuple(support_x.shape[1:])} vs {tuple(query_x.shape[1:])}")
        n_way = None
        if self.task == "classification":
            negative = support_y[support_y < 0]
            if negative.numel():
                raise ValueError(
                    f"support_y has negative labels {sorted(set(negative.tolist()))}; "
                    f"{HIDDEN} marks an unlabelled (query) item, which belongs in query_x, "
                    "not in the support stream")
            classes, support_y, _ = remap_labels(support_y)
            n_way = len(classes)
        out = self._checked_outputs(support_x[None], support_y[None], query_x[None], n_way)
        return out[0]

    def meta_loss(self, batch: EpisodeBatch) -> tuple[Tensor, dict[str, Tensor]]:
        """Mean query loss over the batch (cross-entropy or MSE) and its metric."""
        if not isinstance(batch, EpisodeBatch):
            raise ValueError(f"meta_loss needs an EpisodeBatch, got {type(batch).__name__}")
        self._check_task(batch.support_y)
        if self.task == "regression":
            out = self._checked_outputs(batch.support_x, batch.support_y, batch.query_x, None)
            loss = F.mse_loss(out, batch.query_y)
            return loss, {"query_mse": loss.detach()}
        n_ways = batch.support_y.amax(dim=1) + 1  # [T]; labels are 0 .. n_way-1 (EpisodeBatch)
        if not (n_ways == n_ways[0]).all():
            raise ValueError("every episode of a batch must have the same n_way")
        logits = self._checked_outputs(batch.support_x, batch.support_y, batch.query_x,
                                       int(n_ways[0]))  # [T, n_q, n_way]
        loss = F.cross_entropy(logits.flatten(0, 1), batch.query_y.flatten())
        accuracy = metric_accuracy(logits.detach().flatten(0, 1), batch.query_y.flatten())
        return loss, {"accuracy": accuracy.detach()}

    @torch.no_grad()
    def evaluation_metrics(self, episode: Episode) -> dict[str, Tensor]:
        """``{"accuracy": ...}`` (classification) or ``{"query_mse": ...}`` of one episode."""
        out = self.predict(episode)
        if self.task == "regression":
            return {"query_mse": F.mse_loss(out, episode.query_y)}
        return {"accuracy": metric_accuracy(out, episode.query_y)}

    @torch.no_grad()
    def predict(self, episode: Episode) -> Tensor:
        """Query scores ``[n_query, n_way]`` (or predictions ``[n_query, y_dim]``)."""
        if not isinstance(episode, Episode):
            raise ValueError(f"predict needs an Episode, got {type(episode).__name__}")
        return self(episode.support_x, episode.support_y, episode.query_x)
