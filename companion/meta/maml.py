"""MAML and its first-order, head-only (ANIL) and learned-learning-rate (Meta-SGD) variants.

MAML (Finn, Abbeel & Levine, 2017) learns an initialisation ``theta`` from which a few
gradient steps on a task's support set give a good model for that task:

    min_theta  E_T [ L_T^query( theta - alpha * grad L_T^support(theta) ) ].

* **FOMAML** drops the second-order term (the Hessian of the support loss) from the
  meta-gradient; **ANIL** (Raghu et al., 2020) adapts only the final layer in the inner loop;
  **Meta-SGD** (Li et al., 2017) learns a per-parameter inner learning rate ``alpha``.
* A meta-batch is evaluated either by a Python loop over tasks or by ``torch.func.vmap`` over
  the stacked batch; both give the same result (``batching="auto"`` picks one by the rule
  documented in :class:`MAMLConfig`, from ``benchmarks/maml_speed.py``).
* Two execution levers leave the meta-gradient unchanged: ``backward_chunk`` back-propagates
  a few tasks at a time inside :meth:`MAML.training_step` (only those tasks' graphs are alive
  at once), and ``batched_first_step`` takes the first inner step of every task in one
  batched call at the shared initialisation.

Chapter: MAML. References: :cite:t:`finn2017model`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from companion._checks import (
    TASKS,
    check_batch_data,
    check_bool,
    check_finite,
    check_non_negative_int,
    check_overrides,
    check_positive_float,
    check_positive_int,
    check_task_data,
    task_loss,
)
from companion.data.episode import Episode, EpisodeBatch
from companion.engine.distributed import all_reduce_gradients
from companion.meta.functional import (
    Params,
    check_params,
    check_running_stats,
    inner_adapt,
    named_params,
    param_key,
)
from companion.meta.protocols import AdaptedPredictor
from companion.metrics import accuracy

__all__ = ["MAML", "MAMLConfig", "adaptation_curve"]

BATCHING = ("auto", "loop", "vmap")
# CPU rule of thumb from benchmarks/maml_speed.py: vmap pays off only for small query sets.
# The threshold counts the queries of one task (all classes together): 5-way with 1 query per
# class is 5 queries per task (vmap), 5-way with 15 per class is 75 (loop).
VMAP_MAX_QUERIES_PER_TASK_ON_CPU = 10
VMAP_MAX_QUERIES_ON_CPU = VMAP_MAX_QUERIES_PER_TASK_ON_CPU  # the former name, kept for users


@dataclass(frozen=True)
class MAMLConfig:
    """Hyperparameters of MAML and its variants; defaults are the paper's Omniglot 5-way ones.

    Execution (none of these options changes the meta-gradient, only its cost):

    * ``batching``: ``"loop"`` adapts the tasks one after another in Python; ``"vmap"``
      adapts them all at once with ``torch.func.vmap``; ``"auto"`` (default) chooses per
      batch (:meth:`MAML.batching_for`): ``"loop"`` whenever the model has ``nn.BatchNorm``
      layers (their native kernel gives a wrong second-order meta-gradient under ``vmap``);
      otherwise ``"vmap"`` on CUDA; on a CPU ``"vmap"`` only when a task has at most
      ``VMAP_MAX_QUERIES_PER_TASK_ON_CPU`` (10) query examples in total, counted over all
      classes (5-way with 1 query per class: 5, vmap; with 15 per class: 75, loop).
    * ``backward_chunk``: None (default) back-propagates the mean query loss of the whole
      meta-batch once, so every task's graph is in memory at the same time. An integer ``k``
      makes :meth:`MAML.training_step` (what :func:`companion.fit` calls) back-propagate
      ``k`` tasks at a time, each chunk's loss weighted by its share of the batch; the
      gradients accumulate to the same meta-gradient with about ``k / n_tasks`` of the
      graph memory (``1``: per task, as learn2learn and higher users do).
    * ``batched_first_step``: when the loop path runs (``batching="loop"``, or ``"auto"``
      choosing it; ``"vmap"`` batches every step anyway), take the first inner step of all
      tasks in one ``vmap`` call (every task starts from the same initialisation, so the
      convolutions see one large batch; batch-statistics normalisation still uses each
      task's own statistics), then continue task by task. Needs a model without
      ``nn.BatchNorm`` layers (``Conv4(norm="batch_stats")`` is fine).
    """

    inner_lr: float = 0.4  # alpha: step size of the inner (per-task) gradient steps
    inner_steps: int = 1  # inner steps during meta-training (paper: 1 for Omniglot 5-way)
    eval_inner_steps: int = 3  # inner steps when adapting to a test task (paper: 3)
    first_order: bool = False  # FOMAML: detach the inner gradients (no Hessian term)
    learn_inner_lr: bool = False  # Meta-SGD: a learned inner learning rate per weight
    adapt: str = "all"  # "all" (MAML) or "head" (ANIL: only parameters under `head`)
    head: str = "head"  # name of the head sub-module, for adapt="head"
    task: str = "classification"  # "classification" (cross-entropy) or "regression" (MSE)
    batching: str = "auto"  # "loop", "vmap", or "auto" (device and query-size rule)
    backward_chunk: int | None = None  # tasks per backward in training_step (None: all)
    batched_first_step: bool = False  # loop batching: first inner step of all tasks at once

    def __post_init__(self) -> None:
        if self.backward_chunk is not None:
            check_positive_int("backward_chunk", self.backward_chunk)
        check_bool("batched_first_step", self.batched_first_step)
        check_positive_float("inner_lr", self.inner_lr)
        check_positive_int("inner_steps", self.inner_steps)
        check_positive_int("eval_inner_steps", self.eval_inner_steps)
        check_bool("first_order", self.first_order)
        check_bool("learn_inner_lr", self.learn_inner_lr)
        if not isinstance(self.head, str) or not self.head:
            raise ValueError(f"head must be the name of a sub-module, got {self.head!r}")
        for name, value, allowed in (("adapt", self.adapt, ("all", "head")),
                                     ("task", self.task, TASKS),
                                     ("batching", self.batching, BATCHING)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


class MAML(AdaptedPredictor, nn.Module):
    """Model-agnostic meta-learning around any ``nn.Module``.

    Args:
        model: the network whose initial weights are meta-learned (e.g.
            ``Conv4(n_classes=5, norm="batch_stats")`` or ``MLP(1, (40, 40), 1)``).
        config: a :class:`MAMLConfig`; keyword overrides are applied on top, e.g.
            ``MAML(net, first_order=True)``.

    Example:
        >>> maml = MAML(Conv4(n_classes=5), inner_lr=0.4, inner_steps=1)
        >>> loss, metrics = maml.meta_loss(sampler.sample_batch(32))   # then loss.backward()
        >>> logits = maml.predict(test_episode)                        # 3 adaptation steps
    """

    def __init__(self, model: nn.Module, config: MAMLConfig | None = None,
                 **overrides: Any) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
        if config is not None and not isinstance(config, MAMLConfig):
            raise ValueError(f"config must be a MAMLConfig or None, got {type(config).__name__}")
        check_overrides(MAMLConfig, overrides)
        self.config = replace(config or MAMLConfig(), **overrides)
        self.model = model
        names = [name for name, _ in model.named_parameters()]
        if not names:
            raise ValueError("model has no parameters to meta-learn")
        if self.config.adapt == "head":
            prefix = self.config.head + "."
            self.adapt_names = tuple(n for n in names if n.startswith(prefix))
            if not self.adapt_names:
                raise ValueError(f"adapt='head' but the model has no parameters under "
                                 f"{self.config.head!r}; its parameters are {names}")
        else:
            self.adapt_names = tuple(names)
        check_running_stats(model, "MAML")
        self.has_batchnorm = any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                 for m in model.modules())
        if self.config.batching == "vmap" and self.has_batchnorm:
            raise ValueError(
                "batching='vmap' with nn.BatchNorm layers gives a wrong second-order "
                "meta-gradient; build the model with companion.models.BatchStatNorm2d "
                "(Conv4(norm='batch_stats')) or use batching='loop'"
            )
        if self.config.batched_first_step and self.has_batchnorm:
            raise ValueError(
                "batched_first_step=True runs the first inner step under vmap, where "
                "nn.BatchNorm layers give a wrong second-order meta-gradient; build the model "
                "with companion.models.BatchStatNorm2d (Conv4(norm='batch_stats'))"
            )
        self.loss_fn = task_loss(self.config.task)
        if self.config.learn_inner_lr:  # Meta-SGD: one learned rate per weight
            params = dict(model.named_parameters())
            self.inner_lrs = nn.ParameterDict({
                param_key(n): nn.Parameter(torch.full_like(params[n], self.config.inner_lr))
                for n in self.adapt_names
            })

    # ------------------------------------------------------------------ building blocks

    def params(self) -> Params:
        """The meta-parameters of the wrapped model, by name."""
        return named_params(self.model)

    def inner_lr(self) -> float | dict[str, Tensor]:
        """The inner learning rate: a float, or per-parameter tensors for Meta-SGD."""
        if self.config.learn_inner_lr:
            return {n: self.inner_lrs[param_key(n)] for n in self.adapt_names}
        return self.config.inner_lr

    def adapt(self, support_x: Tensor, support_y: Tensor, *, steps: int | None = None,
              params: Params | None = None) -> Params:
        """Fast weights after ``steps`` inner steps on the support set (default: training steps).

        Differentiable with respect to the meta-parameters unless ``first_order`` is set.

        Raises:
            ValueError: non-tensor inputs, a count mismatch, NaN/inf inputs, or labels that are
                not int64, negative, or beyond the model's outputs.
        """
        check_task_data(self.model, self.config.task, "support_x", support_x, "support_y",
                        support_y)
        steps = check_non_negative_int("steps", self.config.inner_steps if steps is None
                                       else steps)
        params = self.params() if params is None else params
        check_params(self.model, params)
        return inner_adapt(self.model, params, support_x, support_y, loss_fn=self.loss_fn,
                           steps=steps, lr=self.inner_lr(), adapt=self.adapt_names,
                           first_order=self.config.first_order)

    def forward(self, x: Tensor, params: Params | None = None) -> Tensor:
        """The wrapped model applied with ``params`` (default: the meta-parameters)."""
        return functional_call(self.model, self.params() if params is None else params, (x,))

    def _task_loss(self, params: Params, sx: Tensor, sy: Tensor, qx: Tensor,
                   qy: Tensor) -> tuple[Tensor, Tensor]:
        """Query loss after adaptation, and the metric (accuracy, or the loss itself)."""
        fast = inner_adapt(self.model, params, sx, sy, loss_fn=self.loss_fn,
                           steps=self.config.inner_steps, lr=self.inner_lr(),
                           adapt=self.adapt_names, first_order=self.config.first_order)
        return self._query_loss(fast, qx, qy)

    def _query_loss(self, fast: Params, qx: Tensor, qy: Tensor) -> tuple[Tensor, Tensor]:
        """Query loss with adapted weights ``fast``, and the metric."""
        out = functional_call(self.model, fast, (qx,))  # [n_query, n_way] or [n_query, ...]
        loss = self.loss_fn(out, qy)
        if self.config.task == "classification":
            metric = accuracy(out, qy)
        else:
            metric = loss
        return loss, metric.detach()

    # ------------------------------------------------------------------ the learner protocol

    def batching_for(self, batch: EpisodeBatch) -> str:
        """``"loop"`` or ``"vmap"``: the configured choice, or the ``"auto"`` rule.

        Auto: never vmap with ``nn.BatchNorm`` layers; vmap on CUDA; on a CPU, vmap only when
        each task has at most ``VMAP_MAX_QUERIES_PER_TASK_ON_CPU`` query examples (all classes
        together: ``batch.query_x.shape[1]``), measured in ``benchmarks/maml_speed.py``.
        """
        if self.config.batching != "auto":
            return self.config.batching
        if self.has_batchnorm:
            return "loop"
        if batch.device.type == "cuda":
            return "vmap"
        return ("vmap" if batch.query_x.shape[1] <= VMAP_MAX_QUERIES_PER_TASK_ON_CPU
                else "loop")

    def meta_loss(self, batch: EpisodeBatch,
                  params: Params | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Mean query loss after adaptation over the tasks of ``batch`` (differentiable).

        Args:
            batch: stacked tasks, with per-task labels ``[n_tasks, n]``. When every task
                shares one label vector ``y`` (``[n]``, e.g. ``torch.arange(5)
                .repeat_interleave(shots)``), expand it without copying:
                ``EpisodeBatch(sx, y.expand(len(sx), -1), qx, qy.expand(len(qx), -1))``.
            params: meta-parameters to use instead of the model's own (e.g. for a
                finite-difference check); must match the model's names and shapes.
        """
        self._check_batch(batch)
        check_batch_data(self.model, self.config.task, batch.support_x, batch.support_y,
                         batch.query_x, batch.query_y)
        if params is None:
            params = self.params()
        else:
            check_params(self.model, params)
        losses, metrics = self._task_losses(self.batching_for(batch), params, batch.support_x,
                                            batch.support_y, batch.query_x, batch.query_y)
        return losses.mean(), {self._metric_name(): metrics.mean()}

    def _metric_name(self) -> str:
        return "accuracy" if self.config.task == "classification" else "query_mse"

    def _task_losses(self, batching: str, params: Params, sx: Tensor, sy: Tensor, qx: Tensor,
                     qy: Tensor) -> tuple[Tensor, Tensor]:
        """``[n_tasks]`` query losses and metrics of validated stacked tasks."""
        if batching == "vmap":
            return vmap(self._task_loss, in_dims=(None, 0, 0, 0, 0))(params, sx, sy, qx, qy)
        if self.config.batched_first_step:
            return self._batched_first_step_losses(params, sx, sy, qx, qy)
        pairs = [self._task_loss(params, *task) for task in zip(sx, sy, qx, qy, strict=True)]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])

    def _batched_first_step_losses(self, params: Params, support_x: Tensor, support_y: Tensor,
                                   query_x: Tensor, query_y: Tensor) -> tuple[Tensor, Tensor]:
        """Per-task query losses and metrics, the first inner step of all tasks in one call.

        Every task's first step starts from ``params``, so ``vmap`` over the tasks with
        ``params`` unbatched runs each layer once on ``[n_tasks * n_support, ...]`` inputs
        (batch-statistics normalisation still reduces over each task's own examples). The
        remaining inner steps and the query pass run task by task.

        Returns:
            ``[n_tasks]`` losses and ``[n_tasks]`` metrics.
        """
        def first_step(sx: Tensor, sy: Tensor) -> Params:
            return inner_adapt(self.model, params, sx, sy, loss_fn=self.loss_fn, steps=1,
                               lr=self.inner_lr(), adapt=self.adapt_names,
                               first_order=self.config.first_order)

        stacked = vmap(first_step)(support_x, support_y)  # {name: [n_tasks, ...]}
        names = list(stacked)
        per_task = [dict(zip(names, values, strict=True))
                    for values in zip(*(stacked[n].unbind(0) for n in names), strict=True)]
        losses, metrics = [], []
        for fast, sx, sy, qx, qy in zip(per_task, support_x, support_y, query_x, query_y,
                                        strict=True):
            fast = inner_adapt(self.model, fast, sx, sy, loss_fn=self.loss_fn,
                               steps=self.config.inner_steps - 1, lr=self.inner_lr(),
                               adapt=self.adapt_names, first_order=self.config.first_order)
            loss, metric = self._query_loss(fast, qx, qy)
            losses.append(loss)
            metrics.append(metric)
        return torch.stack(losses), torch.stack(metrics)

    def training_step(self, batch: EpisodeBatch,
                      optimizer: torch.optim.Optimizer | Sequence[torch.optim.Optimizer]
                      ) -> tuple[Tensor, dict[str, Tensor]]:
        """One meta-training step: meta-gradient, gradient all-reduce, optimiser step(s).

        What :func:`companion.fit` calls. With ``backward_chunk=None`` it is exactly
        ``meta_loss`` -> ``backward`` -> step. With ``backward_chunk=k`` the tasks are taken
        ``k`` at a time; each chunk's mean loss, weighted by ``len(chunk) / n_tasks``, is
        back-propagated at once, so the accumulated gradient is the meta-gradient of the
        mean over all tasks while only one chunk's graph is alive.

        Args:
            batch: stacked tasks, as for :meth:`meta_loss`.
            optimizer: the outer optimiser, or a sequence of them (all are zeroed and stepped).

        Returns:
            The mean query loss over all tasks (detached) and the mean metric.

        Raises:
            ValueError: as :meth:`meta_loss`; an optimiser argument that is not one.
            RuntimeError: a non-finite loss (nothing is stepped then).
        """
        items = list(optimizer) if isinstance(optimizer, (list, tuple)) else [optimizer]
        optimizers = [o for o in items if isinstance(o, torch.optim.Optimizer)]
        if not optimizers or len(optimizers) != len(items):
            raise ValueError(f"optimizer must be a torch.optim.Optimizer or a sequence of "
                             f"them, got {optimizer!r}")
        self._check_batch(batch)  # once for the whole batch, not per chunk
        check_batch_data(self.model, self.config.task, batch.support_x, batch.support_y,
                         batch.query_x, batch.query_y)
        batching, params = self.batching_for(batch), self.params()
        n = len(batch)
        chunk = n if self.config.backward_chunk is None else self.config.backward_chunk
        for o in optimizers:
            o.zero_grad(set_to_none=True)
        loss_sum, metric_sum = torch.zeros(()), torch.zeros(())
        for start in range(0, n, chunk):
            rows = slice(start, start + chunk)
            losses, metrics = self._task_losses(
                batching, params, batch.support_x[rows], batch.support_y[rows],
                batch.query_x[rows], batch.query_y[rows])  # [k], [k]
            part = losses.sum()
            if not torch.isfinite(part.detach()):
                raise RuntimeError(f"the meta-training loss became {part.item()}; lower the "
                                   "learning rate(s) or check the data")
            (part / n).backward()  # mean over all n tasks, accumulated chunk by chunk
            loss_sum = loss_sum.to(part) + part.detach()
            metric_sum = metric_sum.to(metrics) + metrics.detach().sum()
        all_reduce_gradients(self.parameters())
        for o in optimizers:
            o.step()
        return loss_sum / n, {self._metric_name(): metric_sum / n}

    def evaluation_weights(self, episode: Episode, steps: int | None = None) -> Params:
        """The weights adapted to ``episode``'s support set for testing (``eval_inner_steps``
        steps by default), detached from the meta-parameters (nothing is tracked for the
        meta-gradient; the adaptation itself still uses gradients); :meth:`predict` applies
        them.

        Raises:
            ValueError: as :meth:`adapt` for the support set; NaN/inf queries.
        """
        if not isinstance(episode, Episode):
            raise ValueError(f"predict needs an Episode, got {type(episode).__name__}")
        check_finite("episode.query_x", episode.query_x)  # the support is checked by adapt
        steps = self.config.eval_inner_steps if steps is None else steps
        params = {k: v.detach() for k, v in self.params().items()}
        return self.adapt(episode.support_x, episode.support_y, steps=steps, params=params)

    def _check_batch(self, batch: EpisodeBatch) -> None:
        if not isinstance(batch, EpisodeBatch):
            raise ValueError(f"meta_loss needs an EpisodeBatch (e.g. sampler.sample_batch(n)), "
                             f"got {type(batch).__name__}")
        is_cls = not batch.support_y.dtype.is_floating_point
        if is_cls != (self.config.task == "classification"):
            raise ValueError(f"task={self.config.task!r} but the batch has "
                             f"{'integer labels' if is_cls else 'float targets'}")


def adaptation_curve(maml: MAML, batch: EpisodeBatch, max_steps: int) -> Tensor:
    """Query metric after 0, 1, ..., ``max_steps`` adaptation steps, for every task.

    The metric is the mean squared error for regression and the accuracy for
    classification. Nothing is kept for a meta-gradient (first-order inner steps from detached
    meta-parameters), and tasks are batched with ``vmap`` unless the model has BatchNorm.

    Returns:
        ``[n_tasks, max_steps + 1]``.
    """
    check_non_negative_int("max_steps", max_steps)
    maml._check_batch(batch)
    for name in ("support_x", "support_y", "query_x", "query_y"):
        check_finite(f"batch.{name}", getattr(batch, name))
    batch = batch.to(next(maml.model.parameters()).device)
    params = {k: v.detach() for k, v in maml.params().items()}
    lr = maml.inner_lr()
    lr = {k: v.detach() for k, v in lr.items()} if isinstance(lr, dict) else lr

    def per_task(sx: Tensor, sy: Tensor, qx: Tensor, qy: Tensor) -> Tensor:
        fast, curve = params, []
        for step in range(max_steps + 1):
            if step:
                fast = inner_adapt(maml.model, fast, sx, sy, loss_fn=maml.loss_fn, steps=1,
                                   lr=lr, adapt=maml.adapt_names, first_order=True)
            out = functional_call(maml.model, fast, (qx,))
            if maml.config.task == "classification":
                curve.append(accuracy(out, qy))
            else:
                curve.append(maml.loss_fn(out, qy))
        return torch.stack(curve).detach()

    args = (batch.support_x, batch.support_y, batch.query_x, batch.query_y)
    if maml.has_batchnorm:
        return torch.stack([per_task(*task) for task in zip(*args, strict=True)])
    return vmap(per_task)(*args)
