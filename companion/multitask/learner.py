"""The multi-task learner for loss weighting: an architecture plus a weighted sum of task losses.

:class:`MultiTaskLearner` (``"equal"``, ``"uncertainty"``, ``"dwa"``) defines
``training_loss(batch)``: a weighted sum of the task losses (plus the L2 coupling penalty when
configured); the training loop does the backward and the step. Its subclass
:class:`~companion.multitask.gradient_learner.GradientMultiTaskLearner` adds
``training_step`` for the methods that need per-task gradients, and
:func:`~companion.multitask.factory.multitask_learner` picks the class for a config. Both
report per-task losses as metrics and define ``evaluation_metrics`` (accuracy for
classification tasks, mean squared error for regression tasks).

Chapter: Multi-task learning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from companion.data.multitask_batch import MultiTaskBatch
from companion.engine.distributed import all_reduce_mean
from companion.metrics import accuracy
from companion.multitask._checks import check_kinds, check_task_losses, check_tasks
from companion.multitask.config import LOSS_METHODS, MultiTaskConfig
from companion.multitask.dwa import DynamicWeightAverage
from companion.multitask.equal import EqualWeighting
from companion.multitask.gradients import TaskGradients, task_gradients
from companion.multitask.model import MultiTaskModel
from companion.multitask.uncertainty import UncertaintyWeighting

__all__ = ["MultiTaskLearner", "task_loss"]


def task_loss(kind: str, output: Tensor, target: Tensor, task: str) -> Tensor:
    if kind == "classification":
        if output.ndim != 2 or target.shape != output.shape[:1]:
            raise ValueError(f"batch.y[{task!r}]: classification needs logits [B, C] and labels "
                             f"[B], got {tuple(output.shape)} and {tuple(target.shape)}")
        return F.cross_entropy(output, target)
    if output.shape != target.shape:
        raise ValueError(f"batch.y[{task!r}] has shape {tuple(target.shape)}, the model's "
                         f"output {tuple(output.shape)}")
    return F.mse_loss(output, target)


class MultiTaskLearner(nn.Module):
    """A multi-task model trained with a weighted sum of its task losses.

    Args:
        model: a multi-task architecture (``HardSharing``, ``CrossStitchNetwork``,
            ``L2CoupledTowers``, ``MMoE`` or any module with ``tasks``, ``forward(x, tasks)``
            and ``shared_parameters()``).
        kinds: task name -> ``"classification"`` (cross-entropy) or ``"regression"`` (MSE);
            default all classification.
        config: a :class:`MultiTaskConfig`; keyword overrides are applied on top.

    Example:
        >>> learner = MultiTaskLearner(HardSharing(trunk, heads), method="uncertainty")
        >>> loss, metrics = learner.training_loss(batch)
    """

    methods: tuple[str, ...] = LOSS_METHODS

    def __init__(self, model: nn.Module, kinds: Mapping[str, str] | None = None,
                 config: MultiTaskConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        self.config = replace(config or MultiTaskConfig(), **overrides)
        if self.config.method not in self.methods:
            raise ValueError(f"config.method={self.config.method!r} is not handled by "
                             f"{type(self).__name__}; use multitask_learner(...) to pick the "
                             "class for a method")
        if not isinstance(model, MultiTaskModel) or not isinstance(model, nn.Module):
            raise ValueError("model must be an nn.Module with tasks, forward(x, tasks) and "
                             "shared_parameters()")
        self.model = model
        self.tasks = check_tasks(cast(MultiTaskModel, model).tasks, "model.tasks")
        kinds = dict.fromkeys(self.tasks, "classification") if kinds is None else kinds
        self.kinds = check_kinds(kinds, self.tasks)
        if self.config.coupling > 0 and not hasattr(model, "coupling_penalty"):
            raise ValueError("config.coupling > 0 needs a model with coupling_penalty() "
                             "(L2CoupledTowers)")
        self.weighting: nn.Module | None = None
        self._equal = EqualWeighting(self.tasks)
        if self.config.method == "uncertainty":
            self.weighting = UncertaintyWeighting(self.kinds)
        elif self.config.method == "dwa":
            self.weighting = DynamicWeightAverage(self.tasks, temperature=self.config.
                                                  dwa_temperature, period=self.config.dwa_period)

    # ----------------------------------------------------------------- forward and losses
    def outputs(self, batch: MultiTaskBatch,
                params: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
        """``{task: model output}``; one forward when the tasks share their input.

        Args:
            params: optional parameter overrides (name -> tensor) for ``functional_call``,
                e.g. the look-ahead weights of :func:`lookahead_affinity`.
        """
        self._check_batch(batch)

        def run(x: Tensor, tasks: Sequence[str]) -> dict[str, Tensor]:
            if params is None:
                return self.model(x, tasks)
            return functional_call(self.model, dict(params), (x,), {"tasks": tasks})

        shared = batch.shared_input
        if shared is not None:
            return run(shared, self.tasks)
        return {t: run(batch.x[t], [t])[t] for t in self.tasks}

    def task_losses(self, batch: MultiTaskBatch,
                    params: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
        """``{task: scalar loss}`` (cross-entropy or MSE by the task's kind), checked finite."""
        out = self.outputs(batch, params)
        losses = {t: task_loss(self.kinds[t], out[t], batch.y[t], t) for t in self.tasks}
        return check_task_losses(losses, tasks=self.tasks)

    def _check_batch(self, batch: MultiTaskBatch) -> None:
        if not isinstance(batch, MultiTaskBatch):
            raise ValueError(f"batch must be a MultiTaskBatch, got {type(batch).__name__}")
        if set(batch.tasks) != set(self.tasks):
            raise ValueError(f"batch has tasks {list(batch.tasks)}, the model "
                             f"{list(self.tasks)}")

    def _penalty(self) -> Tensor | None:
        if self.config.coupling > 0:
            return self.config.coupling * self.model.coupling_penalty()  # type: ignore[operator]
        return None

    def _metrics(self, losses: Mapping[str, Tensor],
                 weights: Mapping[str, Any] | None = None) -> dict[str, Tensor]:
        metrics = {f"loss/{t}": v.detach() for t, v in losses.items()}
        for t, w in (weights or {}).items():
            metrics[f"weight/{t}"] = torch.as_tensor(w, dtype=torch.float32).detach()
        return metrics

    # ----------------------------------------------------------------- training
    def combined_loss(self, losses: Mapping[str, Tensor]) -> Tensor:
        """The weighted sum of the task losses under the configured weighting."""
        if self.weighting is None:
            return self._equal.combine(losses)
        return cast(UncertaintyWeighting | DynamicWeightAverage, self.weighting).combine(losses)

    def training_loss(self, batch: MultiTaskBatch) -> tuple[Tensor, dict[str, Tensor]]:
        """The differentiable training loss (weighted task losses + coupling) and metrics."""
        losses = self.task_losses(batch)
        loss = self.combined_loss(losses)
        penalty = self._penalty()
        if penalty is not None:
            loss = loss + penalty
        weights: Mapping[str, Any] | None = None
        if isinstance(self.weighting, (UncertaintyWeighting, DynamicWeightAverage)):
            weights = self.weighting.weights()
        metrics = self._metrics(losses, weights)
        if isinstance(self.weighting, DynamicWeightAverage) and self.training:
            # On several processes every rank records the mean over ranks, so that all ranks
            # keep the same loss history and hence the same task weights (no-op on one).
            self.weighting.observe({t: all_reduce_mean(v.detach()) for t, v in losses.items()})
        return loss, metrics

    # ----------------------------------------------------------------- evaluation
    @torch.no_grad()
    def evaluation_metrics(self, sample: MultiTaskBatch) -> dict[str, Tensor]:
        """``accuracy/<task>`` (classification) or ``mse/<task>`` (regression) on ``sample``,
        and ``accuracy/mean`` over the classification tasks."""
        out = self.outputs(sample)
        metrics: dict[str, Tensor] = {}
        for t in self.tasks:
            y = sample.y[t]
            if self.kinds[t] == "classification":
                metrics[f"accuracy/{t}"] = accuracy(out[t], y)
            else:
                metrics[f"mse/{t}"] = F.mse_loss(out[t], y)
        accs = [v for k, v in metrics.items() if k.startswith("accuracy/")]
        if accs:
            metrics["accuracy/mean"] = torch.stack(accs).mean()
        return metrics

    def task_gradients(self, batch: MultiTaskBatch) -> TaskGradients:
        """Each task's gradient of the shared parameters on ``batch`` (for relatedness)."""
        shared = self._shared()
        return task_gradients(self.task_losses(batch), shared, retain_graph=False)

    def _shared(self) -> dict[str, nn.Parameter]:
        shared = cast(MultiTaskModel, self.model).shared_parameters()
        if not shared:
            raise ValueError(f"the model {type(self.model).__name__} shares no parameters; "
                             "gradient methods and gradient relatedness need shared ones")
        return {f"model.{n}": p for n, p in shared.items()}
