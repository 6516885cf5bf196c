"""Multi-task learners: an architecture plus a loss-weighting or gradient method.

Two classes, because the training loop treats them differently:

* :class:`MultiTaskLearner` (``"equal"``, ``"uncertainty"``, ``"dwa"``) defines
  ``training_loss(batch)``: a weighted sum of the task losses; the loop does the backward.
* :class:`GradientMultiTaskLearner` (``"gradnorm"``, ``"pcgrad"``, ``"mgda"``, ``"mgda_ub"``)
  also defines ``training_step(batch, optimizers)``: it computes per-task gradients, sets
  ``.grad`` itself and steps the optimiser(s).

:func:`multitask_learner` picks the right one for a config. Both report per-task losses as
metrics and define ``evaluation_metrics`` (accuracy for classification tasks, mean squared
error for regression tasks).

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
from companion.multitask._checks import check_kinds, check_task_losses, check_tasks
from companion.multitask.config import GRADIENT_METHODS, LOSS_METHODS, MultiTaskConfig
from companion.multitask.dwa import DynamicWeightAverage
from companion.multitask.equal import EqualWeighting
from companion.multitask.gradients import TaskGradients, task_gradients, write_gradients
from companion.multitask.gradnorm import GradNorm
from companion.multitask.method import GradientMethod
from companion.multitask.mgda import MGDA
from companion.multitask.model import MultiTaskModel, SharedRepresentationModel
from companion.multitask.pcgrad import PCGrad
from companion.multitask.uncertainty import UncertaintyWeighting

__all__ = ["GradientMultiTaskLearner", "MultiTaskLearner", "multitask_learner"]

Optimizers = torch.optim.Optimizer | Sequence[torch.optim.Optimizer]


def _task_loss(kind: str, output: Tensor, target: Tensor, task: str) -> Tensor:
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
        >>> learner = multitask_learner(HardSharing(trunk, heads), method="uncertainty")
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
        losses = {t: _task_loss(self.kinds[t], out[t], batch.y[t], t) for t in self.tasks}
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
            self.weighting.observe(losses)
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
                metrics[f"accuracy/{t}"] = (out[t].argmax(dim=1) == y).float().mean()
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


class GradientMultiTaskLearner(MultiTaskLearner):
    """A multi-task learner whose training step works on per-task gradients.

    ``training_step(batch, optimizers)`` zeroes the gradients, sets them, and steps the
    optimiser(s). ``optimizers`` is the model optimiser, or for GradNorm a pair
    ``(model_optimizer, weight_optimizer)`` where the second holds only
    ``learner.gradnorm.weights`` (see :meth:`model_parameters`).
    """

    methods = GRADIENT_METHODS

    def __init__(self, model: nn.Module, kinds: Mapping[str, str] | None = None,
                 config: MultiTaskConfig | None = None, **overrides: Any) -> None:
        super().__init__(model, kinds, config, **overrides)
        method = self.config.method
        self.gradient_method: GradientMethod | None = None
        if method == "gradnorm":
            self.gradnorm = GradNorm(self.tasks, alpha=self.config.gradnorm_alpha)
            self._gradnorm_layer()  # validate now
        elif method == "pcgrad":
            self.gradient_method = PCGrad(seed=self.config.pcgrad_seed)
            self._shared()
        else:
            self.gradient_method = MGDA(normalization=self.config.mgda_normalization)
            if method == "mgda_ub" and not isinstance(model, SharedRepresentationModel):
                raise ValueError("method 'mgda_ub' needs a model with encode/decode (one shared "
                                 "representation, e.g. HardSharing)")
            self._shared()

    def get_extra_state(self) -> dict[str, Tensor]:
        """PCGrad's generator state, so that a resumed run draws the same task orders."""
        if isinstance(self.gradient_method, PCGrad):
            return {"pcgrad_generator": self.gradient_method.generator.get_state()}
        return {}

    def set_extra_state(self, state: dict[str, Tensor]) -> None:
        if isinstance(self.gradient_method, PCGrad) and "pcgrad_generator" in state:
            self.gradient_method.generator.set_state(state["pcgrad_generator"])

    def model_parameters(self) -> list[nn.Parameter]:
        """Every parameter except GradNorm's weights (give these to the model optimiser)."""
        skip = {id(p) for p in self.gradnorm.parameters()} if hasattr(self, "gradnorm") else set()
        return [p for p in self.parameters() if id(p) not in skip]

    def training_loss(self, batch: MultiTaskBatch) -> tuple[Tensor, dict[str, Tensor]]:
        """The equally weighted loss, for monitoring only: training uses ``training_step``."""
        losses = self.task_losses(batch)
        return self._equal.combine(losses), self._metrics(losses)

    def _gradnorm_layer(self) -> list[nn.Parameter]:
        shared = self._shared()
        prefix = self.config.gradnorm_layer
        if prefix is None:
            weights = [n for n, p in shared.items() if p.ndim >= 2] or list(shared)
            return [shared[weights[-1]]]
        full = prefix if prefix.startswith("model.") else f"model.{prefix}"
        chosen = [p for n, p in shared.items() if n.startswith(full)]
        if not chosen:
            raise ValueError(f"config.gradnorm_layer={prefix!r} matches none of the shared "
                             f"parameters {[n.removeprefix('model.') for n in shared]}")
        return chosen

    def _optimizers(self, optimizers: Optimizers) -> tuple[torch.optim.Optimizer,
                                                           torch.optim.Optimizer | None]:
        opts = [optimizers] if isinstance(optimizers, torch.optim.Optimizer) else list(optimizers)
        if self.config.method == "gradnorm":
            if len(opts) != 2:
                raise ValueError("optimizers must be (model_optimizer, weight_optimizer) for "
                                 "GradNorm, the second over learner.gradnorm.weights only")
            held = {id(p) for g in opts[0].param_groups for p in g["params"]}
            if id(self.gradnorm.weights) in held:
                raise ValueError("optimizers[0] must not hold the GradNorm weights; build it "
                                 "from learner.model_parameters()")
            return opts[0], opts[1]
        if len(opts) != 1:
            raise ValueError(f"optimizers must be one optimiser for {self.config.method!r}, "
                             f"got {len(opts)}")
        return opts[0], None

    def training_step(self, batch: MultiTaskBatch,
                      optimizers: Optimizers) -> tuple[Tensor, dict[str, Tensor]]:
        """One step: per-task gradients, the method's combination, ``.grad``, optimiser step(s).

        Returns:
            The (detached) combined loss and metrics (per-task losses and weights).
        """
        opt, weight_opt = self._optimizers(optimizers)
        opt.zero_grad(set_to_none=True)
        if weight_opt is not None:
            weight_opt.zero_grad(set_to_none=True)
        if self.config.method == "gradnorm":
            loss, metrics = self._gradnorm_backward(batch)
        elif self.config.method == "mgda_ub":
            loss, metrics = self._mgda_ub_backward(batch)
        else:
            loss, metrics = self._gradient_backward(batch)
        opt.step()
        if weight_opt is not None:
            weight_opt.step()
            self.gradnorm.renormalise()
        return loss, metrics

    def _backward_penalty(self) -> None:
        penalty = self._penalty()
        if penalty is not None:
            penalty.backward()

    def _gradnorm_backward(self, batch: MultiTaskBatch) -> tuple[Tensor, dict[str, Tensor]]:
        losses = self.task_losses(batch)
        weights = self.gradnorm.task_weights()
        total = self.gradnorm.backward(losses, self._gradnorm_layer())
        self._backward_penalty()
        return total, self._metrics(losses, weights)

    def _gradient_backward(self, batch: MultiTaskBatch) -> tuple[Tensor, dict[str, Tensor]]:
        losses = self.task_losses(batch)
        shared = self._shared()
        grads = task_gradients(losses, shared, retain_graph=True)
        combined = cast(GradientMethod, self.gradient_method).combine(grads, losses)
        write_gradients(shared, combined.shared)
        specific = {n: p for n, p in self.named_parameters()
                    if p.requires_grad and n not in shared}
        weighted = sum((combined.loss_weights[t] * losses[t] for t in self.tasks[1:]),
                       combined.loss_weights[self.tasks[0]] * losses[self.tasks[0]])
        if specific:
            names = list(specific)
            got = torch.autograd.grad(weighted, [specific[n] for n in names], allow_unused=True)
            write_gradients(specific, {n: g for n, g in zip(names, got, strict=True)
                                       if g is not None})
        self._backward_penalty()
        return weighted.detach(), self._metrics(losses, combined.loss_weights)

    def _mgda_ub_backward(self, batch: MultiTaskBatch) -> tuple[Tensor, dict[str, Tensor]]:
        self._check_batch(batch)
        x = batch.shared_input
        if x is None:
            raise ValueError("method 'mgda_ub' needs a batch whose tasks share one input")
        model = cast(SharedRepresentationModel, self.model)
        z = model.encode(x)  # [B, ...], the shared representation
        out = model.decode(z, self.tasks)
        losses = check_task_losses({t: _task_loss(self.kinds[t], out[t], batch.y[t], t)
                                    for t in self.tasks}, tasks=self.tasks)
        rep_grads = task_gradients(losses, {"z": z}, retain_graph=True)  # d L_t / d z
        weights = cast(MGDA, self.gradient_method).task_weights(rep_grads, losses)
        weighted = sum((weights[t] * losses[t] for t in self.tasks[1:]),
                       weights[self.tasks[0]] * losses[self.tasks[0]])
        weighted.backward()
        self._backward_penalty()
        return weighted.detach(), self._metrics(losses, weights)


def multitask_learner(model: nn.Module, kinds: Mapping[str, str] | None = None,
                      config: MultiTaskConfig | None = None,
                      **overrides: Any) -> MultiTaskLearner:
    """The learner class the configured method needs (see the module docstring)."""
    cfg = replace(config or MultiTaskConfig(), **overrides)
    cls = GradientMultiTaskLearner if cfg.method in GRADIENT_METHODS else MultiTaskLearner
    return cls(model, kinds, cfg)
