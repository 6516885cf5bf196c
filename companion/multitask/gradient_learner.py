"""The multi-task learner for gradient methods: it owns its training step.

:class:`GradientMultiTaskLearner` (``"gradnorm"``, ``"pcgrad"``, ``"mgda"``, ``"mgda_ub"``)
defines ``training_step(batch, optimizers)``: it computes the task losses, each task's
gradient of the shared parameters (or, for MGDA-UB, of the shared representation), lets the
method combine them, writes ``.grad`` itself, averages the gradients over processes
(:func:`companion.engine.all_reduce_gradients`, a no-op on one process) and steps the
optimiser(s). The training loop calls it instead of doing the backward.

On several processes each rank combines the task gradients of its own batch (PCGrad's
projections and MGDA's weights are per rank), and the combined gradients are averaged, as
data-parallel training averages any per-rank gradient.

Chapter: Multi-task learning (gradient methods).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import torch
from torch import Tensor, nn

from companion.data.multitask_batch import MultiTaskBatch
from companion.engine.distributed import all_reduce_gradients
from companion.multitask._checks import check_task_losses
from companion.multitask.config import GRADIENT_METHODS, MultiTaskConfig
from companion.multitask.gradients import task_gradients, write_gradients
from companion.multitask.gradnorm import GradNorm
from companion.multitask.learner import MultiTaskLearner, task_loss
from companion.multitask.method import GradientMethod
from companion.multitask.mgda import MGDA
from companion.multitask.model import SharedRepresentationModel
from companion.multitask.pcgrad import PCGrad

__all__ = ["GradientMultiTaskLearner", "Optimizers"]

Optimizers = torch.optim.Optimizer | Sequence[torch.optim.Optimizer]


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

    def get_extra_state(self) -> Tensor:
        """PCGrad's generator state (uint8), so that a resumed run draws the same task orders;
        an empty tensor for the other methods. A tensor, not a dict: the training loop's
        checkpoint identity reads the shape of every ``state_dict`` entry."""
        if isinstance(self.gradient_method, PCGrad):
            return self.gradient_method.generator.get_state()
        return torch.empty(0, dtype=torch.uint8)

    def set_extra_state(self, state: Tensor | dict[str, Tensor]) -> None:
        if isinstance(state, dict):  # the format of earlier checkpoints
            state = state.get("pcgrad_generator", torch.empty(0, dtype=torch.uint8))
        if isinstance(self.gradient_method, PCGrad) and state.numel() > 0:
            self.gradient_method.generator.set_state(state)

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
        """One step: per-task gradients, the method's combination, ``.grad``, the average over
        processes, optimiser step(s).

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
        all_reduce_gradients(self.parameters())  # the mean over processes (no-op on one)
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
        losses = check_task_losses({t: task_loss(self.kinds[t], out[t], batch.y[t], t)
                                    for t in self.tasks}, tasks=self.tasks)
        rep_grads = task_gradients(losses, {"z": z}, retain_graph=True)  # d L_t / d z
        weights = cast(MGDA, self.gradient_method).task_weights(rep_grads, losses)
        weighted = sum((weights[t] * losses[t] for t in self.tasks[1:]),
                       weights[self.tasks[0]] * losses[self.tasks[0]])
        weighted.backward()
        self._backward_penalty()
        return weighted.detach(), self._metrics(losses, weights)
