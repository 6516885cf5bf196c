"""Per-task gradients of the shared parameters, kept as dicts ``parameter name -> tensor``.

Gradient methods (PCGrad, MGDA) and relatedness measures need each task's gradient of the
shared parameters separately. Here they are ``torch.autograd.grad`` results keyed by the
parameter's name, never packed into a preallocated flat vector: inner products are sums of
per-parameter inner products, and writing the result back is a loop over names.

Chapter: Multi-task learning (gradient methods).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from companion.multitask._checks import check_same_tasks, check_task_losses, check_tasks

__all__ = [
    "Gradients",
    "TaskGradients",
    "combine_gradients",
    "gradient_dot",
    "gradient_gram",
    "task_gradients",
    "write_gradients",
]

Gradients = dict[str, Tensor]  # parameter name -> gradient (the parameter's shape)
TaskGradients = dict[str, Gradients]  # task name -> that task's gradients


def task_gradients(losses: Mapping[str, Tensor], params: Mapping[str, Tensor], *,
                   retain_graph: bool = True) -> TaskGradients:
    """Each task's gradient of the parameters ``params``, one ``autograd.grad`` per task.

    Args:
        losses: task name -> scalar loss (finite).
        params: name -> parameter (typically the model's ``shared_parameters()``).
        retain_graph: keep the graph after the last task (needed when another backward
            follows, e.g. for the task-specific parameters).

    Returns:
        task -> (name -> gradient). A parameter a task does not depend on gets zeros.

    Shapes:
        every gradient has its parameter's shape.
    """
    losses = check_task_losses(losses)
    if not isinstance(params, Mapping) or not params:
        raise ValueError("params must be a non-empty dict name -> parameter (the model may "
                         "have no shared parameters)")
    names, tensors = list(params), list(params.values())
    out: TaskGradients = {}
    for i, (task, loss) in enumerate(losses.items()):
        if not loss.requires_grad:
            raise ValueError(f"losses[{task!r}] does not require grad (computed under no_grad?)")
        keep = retain_graph or i < len(losses) - 1
        grads = torch.autograd.grad(loss, tensors, retain_graph=keep, allow_unused=True)
        out[task] = {n: torch.zeros_like(p) if g is None else g
                     for n, p, g in zip(names, tensors, grads, strict=True)}
    return out


def _check_grads(grads: Mapping[str, Mapping[str, Tensor]]) -> tuple[str, ...]:
    tasks = check_tasks(grads.keys(), "grads")
    names = set(grads[tasks[0]])
    for t in tasks[1:]:
        if set(grads[t]) != names:
            raise ValueError(f"grads: task {t!r} has other parameters than {tasks[0]!r}")
    return tasks


def gradient_dot(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> Tensor:
    """``<a, b>``: the sum of the per-parameter inner products (a scalar tensor)."""
    if set(a) != set(b):
        raise ValueError("a and b must hold gradients of the same parameters")
    return torch.stack([(a[n] * b[n]).sum() for n in a]).sum()


def gradient_gram(grads: Mapping[str, Mapping[str, Tensor]]) -> Tensor:
    """``[T, T]`` matrix of inner products ``<g_i, g_j>`` in the order of ``grads``."""
    tasks = _check_grads(grads)
    rows = [[gradient_dot(grads[i], grads[j]) for j in tasks] for i in tasks]
    return torch.stack([torch.stack(r) for r in rows])  # [T, T]


def combine_gradients(grads: Mapping[str, Mapping[str, Tensor]],
                      weights: Mapping[str, Tensor | float]) -> Gradients:
    """``sum_t weights[t] * grads[t]`` per parameter.

    Raises:
        ValueError: ``weights`` names other tasks than ``grads``, or a weight is not finite.
    """
    tasks = _check_grads(grads)
    check_same_tasks(weights.keys(), tasks, "weights")
    for t in tasks:
        if not bool(torch.isfinite(torch.as_tensor(weights[t]))):
            raise ValueError(f"weights[{t!r}] is not finite")
    out: Gradients = {}
    for n in grads[tasks[0]]:
        total = weights[tasks[0]] * grads[tasks[0]][n]
        for t in tasks[1:]:
            total = total + weights[t] * grads[t][n]
        out[n] = total
    return out


def write_gradients(params: Mapping[str, Tensor], grads: Mapping[str, Tensor], *,
                    accumulate: bool = True) -> None:
    """Store ``grads[name]`` in ``params[name].grad`` (added to what is there, by default).

    Raises:
        ValueError: a gradient for an unknown parameter or of the wrong shape.
    """
    for name, g in grads.items():
        if name not in params:
            raise ValueError(f"grads: {name!r} is not one of the parameters")
        p = params[name]
        if g.shape != p.shape:
            raise ValueError(f"grads[{name!r}] has shape {tuple(g.shape)}, the parameter "
                             f"{tuple(p.shape)}")
        g = g.detach().to(p.dtype)
        if p.grad is None or not accumulate:
            p.grad = g.clone()
        else:
            p.grad.add_(g)
