"""Reptile (Nichol, Achiam & Schulman, 2018): first-order meta-learning by moving toward
the weights that training on each task reaches.

For each task, train a copy of the weights for ``k`` steps (SGD or Adam, on minibatches of
the task's data) from the meta-parameters ``phi`` to ``W``; then move ``phi`` part of the way
there: ``phi <- phi + epsilon * mean_i(W_i - phi)``. No second derivatives, no train/test split
inside a task.

The inner loop is :func:`companion.meta.functional.inner_adapt`, the one MAML uses. The outer
update is expressed as a gradient, ``phi - mean_i(W_i)``, so Reptile trains with the book's
shared :func:`companion.fit` loop: an SGD optimiser with learning rate ``epsilon`` applies
exactly the Reptile update, and :meth:`Reptile.outer_optimizer` returns it together with the
paper's linear annealing of ``epsilon``.

Chapter: Reptile. Reference: :cite:t:`nichol2018first`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from companion._checks import (
    check_batch_data,
    check_finite,
    check_non_negative_int,
    check_overrides,
    check_positive_float,
    check_positive_int,
    check_seed,
    check_task_data,
    task_loss,
)
from companion.data.episode import Episode, EpisodeBatch
from companion.meta.functional import (
    AdamMoments,
    Params,
    check_running_stats,
    inner_adapt,
    named_params,
    param_key,
)
from companion.meta.protocols import AdaptedPredictor

__all__ = ["Reptile", "ReptileConfig"]


@dataclass(frozen=True)
class ReptileConfig:
    """Hyperparameters; defaults follow the paper's Omniglot setting (its Table 3)."""

    inner_lr: float = 1e-3  # step size of the inner optimiser
    inner_steps: int = 5  # k: inner steps per task while meta-training
    inner_batch_size: int | None = 10  # examples per inner step (None: the whole task)
    inner_optimizer: str = "adam"  # "adam" (beta1 = 0, statistics kept across tasks) or "sgd"
    outer_lr: float = 1.0  # epsilon: the fraction of the way toward mean(W_i), in (0, 1]
    final_outer_lr: float = 0.0  # epsilon is annealed linearly to this value
    eval_inner_steps: int = 50  # inner steps when adapting to a test task
    eval_inner_batch_size: int | None = None  # examples per evaluation step (None: all)
    task: str = "classification"  # or "regression" (mean squared error)

    def __post_init__(self) -> None:
        check_positive_float("inner_lr", self.inner_lr)
        if not isinstance(self.inner_steps, int) or isinstance(self.inner_steps, bool) or (
                self.inner_steps < 1):
            raise ValueError(f"inner_steps must be a positive int (k >= 1), got "
                             f"{self.inner_steps!r}")
        check_positive_int("eval_inner_steps", self.eval_inner_steps)
        for name in ("outer_lr", "final_outer_lr"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f"{name} must be a number (outer_lr in (0, 1], final_outer_lr "
                                 f"in [0, outer_lr]), got {value!r}")
        for name in ("inner_batch_size", "eval_inner_batch_size"):
            value = getattr(self, name)
            if value is not None:
                check_positive_int(name, value)
        if not 0 < self.outer_lr <= 1:
            raise ValueError(f"outer_lr (epsilon) must lie in (0, 1], got {self.outer_lr}")
        if not 0 <= self.final_outer_lr <= self.outer_lr:
            raise ValueError(f"final_outer_lr must lie in [0, outer_lr], got "
                             f"{self.final_outer_lr}")
        if self.inner_optimizer not in ("adam", "sgd"):
            raise ValueError(f"inner_optimizer must be 'adam' or 'sgd', got "
                             f"{self.inner_optimizer!r}")
        task_loss(self.task)  # validates the name


class Reptile(AdaptedPredictor, nn.Module):
    """Reptile around any ``nn.Module``.

    Args:
        model: the network whose initial weights are meta-learned.
        config: a :class:`ReptileConfig`; keyword overrides are applied on top.
        seed: seeds the generator that draws the inner minibatches (saved in checkpoints).

    Example:
        >>> reptile = Reptile(Conv4(n_classes=5))
        >>> optimizer, scheduler = reptile.outer_optimizer(total_iterations=10_000)
        >>> fit(reptile, sampler, optimizer, scheduler=scheduler, iterations=10_000,
        ...     meta_batch_size=5)
    """

    def __init__(self, model: nn.Module, config: ReptileConfig | None = None, *,
                 seed: int = 0, **overrides: Any) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
        if config is not None and not isinstance(config, ReptileConfig):
            raise ValueError(f"config must be a ReptileConfig or None, got "
                             f"{type(config).__name__}")
        check_overrides(ReptileConfig, overrides)
        self.config = replace(config or ReptileConfig(), **overrides)
        self.model = model
        if not any(True for _ in model.parameters()):
            raise ValueError("model has no parameters to meta-learn")
        check_running_stats(model, "Reptile")
        self.loss_fn = task_loss(self.config.task)
        self.generator = torch.Generator().manual_seed(check_seed(seed))  # training minibatches
        self.eval_seed = check_seed(seed)
        if self.config.inner_optimizer == "adam":  # persistent inner statistics, checkpointed
            for name, p in model.named_parameters():
                self.register_buffer(f"inner_adam_v__{param_key(name)}", torch.zeros_like(p))
            self.register_buffer("inner_adam_t", torch.zeros((), dtype=torch.int64))

    def inner_adam_state(self) -> AdamMoments | None:
        """The persistent inner Adam statistics (beta1 = 0, so only the second moment and the
        step count matter), or None for an SGD inner loop."""
        if self.config.inner_optimizer != "adam":
            return None
        v = {name: getattr(self, f"inner_adam_v__{param_key(name)}")
             for name, _ in self.model.named_parameters()}
        steps = self.get_buffer("inner_adam_t")
        return AdamMoments({k: torch.zeros_like(t) for k, t in v.items()}, v, int(steps.item()))

    def _store_inner_adam_state(self, state: AdamMoments) -> None:
        with torch.no_grad():
            for name, v in state.v.items():
                getattr(self, f"inner_adam_v__{param_key(name)}").copy_(v)
            self.get_buffer("inner_adam_t").fill_(state.t)

    def params(self) -> Params:
        return named_params(self.model)

    def adapt(self, x: Tensor, y: Tensor, *, steps: int | None = None,
              batch_size: int | None = None, params: Params | None = None,
              generator: torch.Generator | None = None,
              adam_state: AdamMoments | None = None) -> Params:
        """Weights after ``steps`` inner steps on ``(x, y)`` (default: training settings).

        Reptile never differentiates through this: the result is detached. Minibatches are
        drawn with ``generator`` (default: the training generator). With an Adam inner loop,
        ``adam_state`` is continued and updated (default: a copy of the persistent state, so
        the persistent statistics are left unchanged).

        Raises:
            ValueError: non-tensor inputs, a count mismatch, NaN/inf inputs, or labels that are
                not int64, negative, or beyond the model's outputs.
        """
        check_task_data(self.model, self.config.task, "x", x, "y", y)
        if adam_state is None and self.config.inner_optimizer == "adam":
            adam_state = self.inner_adam_state()
        steps = check_non_negative_int("steps", self.config.inner_steps if steps is None
                                       else steps)
        start = {k: v.detach() for k, v in (params or self.params()).items()}
        fast = inner_adapt(self.model, start, x, y, loss_fn=self.loss_fn, steps=steps,
                           lr=self.config.inner_lr, first_order=True,
                           optimizer=self.config.inner_optimizer, batch_size=batch_size,
                           generator=generator or self.generator, adam_state=adam_state)
        return {k: v.detach() for k, v in fast.items()}

    def task_delta(self, x: Tensor, y: Tensor) -> Params:
        """``W - phi`` for one task: where training on its data moves the weights (advances
        the persistent inner Adam statistics, as training does)."""
        phi = self.params()
        state = self.inner_adam_state()
        fast = self.adapt(x, y, batch_size=self.config.inner_batch_size, adam_state=state)
        if state is not None:
            self._store_inner_adam_state(state)
        return {k: fast[k] - phi[k].detach() for k in phi}

    def meta_loss(self, batch: EpisodeBatch) -> tuple[Tensor, dict[str, Tensor]]:
        """A surrogate whose gradient is ``phi - mean_i W_i``, and whose value is the mean loss
        of the adapted weights on their tasks' query examples.

        Each task trains on its support and query examples together (Reptile has no split
        inside a task); the tasks are visited one after another, continuing the persistent
        inner Adam statistics as the reference implementation does. With SGD at learning rate
        ``epsilon`` on this gradient, the optimiser step is the Reptile update
        ``phi + epsilon * mean_i(W_i - phi)``.
        """
        if not isinstance(batch, EpisodeBatch):
            raise ValueError(f"meta_loss needs an EpisodeBatch, got {type(batch).__name__}")
        check_batch_data(self.model, self.config.task, batch.support_x, batch.support_y,
                         batch.query_x, batch.query_y)
        phi = self.params()
        total = {k: torch.zeros_like(v) for k, v in phi.items()}
        losses = []
        state = self.inner_adam_state()
        for sx, sy, qx, qy in zip(batch.support_x, batch.support_y, batch.query_x,
                                  batch.query_y, strict=True):
            x, y = torch.cat([sx, qx]), torch.cat([sy, qy])  # all of the task's data
            fast = self.adapt(x, y, batch_size=self.config.inner_batch_size, adam_state=state)
            for k in phi:
                total[k] += fast[k] - phi[k].detach()
            with torch.no_grad():
                losses.append(self.loss_fn(functional_call(self.model, fast, (qx,)), qy))
        if state is not None:
            self._store_inner_adam_state(state)
        direction = sum(((phi[k] * -(total[k] / len(batch))).sum() for k in phi),
                        torch.zeros((), device=batch.device))  # gradient: phi - mean(W_i)
        value = torch.stack(losses).mean()
        surrogate = direction - direction.detach() + value  # value shown, gradient Reptile's
        return surrogate, {"adapted_loss": value}

    def outer_optimizer(self, total_iterations: int) -> tuple[torch.optim.Optimizer, Any]:
        """SGD with learning rate ``outer_lr``, annealed linearly to ``final_outer_lr``."""
        check_positive_int("total_iterations", total_iterations)
        optimizer = torch.optim.SGD(self.parameters(), lr=self.config.outer_lr)
        start, end = self.config.outer_lr, self.config.final_outer_lr

        def factor(iteration: int) -> float:  # learning rate = outer_lr * factor
            done = min(iteration / total_iterations, 1.0)
            return ((1 - done) * start + done * end) / start

        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    def evaluation_weights(self, episode: Episode, steps: int | None = None) -> Params:
        """The weights adapted to ``episode``'s support set for testing (``eval_inner_steps``
        steps on minibatches of ``eval_inner_batch_size``); :meth:`predict` applies them.

        Evaluation minibatches come from a generator seeded afresh on every call, and an Adam
        inner loop starts from a copy of the persistent statistics, so the result depends
        only on the learner's state and the episode (never on how much validation ran before).

        Raises:
            ValueError: as :meth:`adapt` for the support set; NaN/inf queries.
        """
        if not isinstance(episode, Episode):
            raise ValueError(f"predict needs an Episode, got {type(episode).__name__}")
        check_task_data(self.model, self.config.task, "episode.support_x", episode.support_x,
                        "episode.support_y", episode.support_y)  # named as the caller knows them
        check_finite("episode.query_x", episode.query_x)
        steps = self.config.eval_inner_steps if steps is None else steps
        return self.adapt(episode.support_x, episode.support_y, steps=steps,
                          batch_size=self.config.eval_inner_batch_size,
                          generator=torch.Generator().manual_seed(self.eval_seed))
