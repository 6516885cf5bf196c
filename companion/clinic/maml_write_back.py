"""Mistake: a MAML that writes the adapted weights back into the model with ``load_state_dict``.

The mistaken snippet (four bugs that travel together)::

    for _ in range(int(inner_lr)):                      # 2. steps taken from the learning rate
        grads = torch.autograd.grad(support_loss, model.parameters())
        fast = [p - inner_lr * g for p, g in zip(model.parameters(), grads)]
    model.load_state_dict(dict(zip(model.state_dict(), fast)))   # 1. graph cut, 3. misaligned
    model(query_x) ... loss.backward()                  # 4. and no meta_optimizer.step()

Symptoms a reader sees:

1. ``load_state_dict`` copies values under ``no_grad``: the query loss no longer depends on the
   meta-parameters through the inner step. The "meta-gradient" is the query gradient at the
   adapted point, without the ``(I - alpha * Hessian)`` factor (first-order MAML at best, by
   accident), and the model's weights are now the *adapted* ones: the meta-parameters are lost.
2. ``range(int(inner_lr))`` is ``range(0)`` for any rate below 1: no inner step is taken, so
   "MAML" silently becomes joint training on the query sets.
3. ``zip(model.state_dict(), fast)`` pairs parameter values with state-dict *keys*, which also
   list buffers (BatchNorm's running statistics): from the first buffer on, every weight lands
   under the wrong name (a size-mismatch error if lucky, silently wrong weights if not).
4. The meta-loss is back-propagated but the outer optimiser never steps: the loss curve is flat.

The corrected version is :func:`companion.meta.inner_adapt` (functional fast weights, the model
untouched), as :class:`companion.meta.MAML` uses it; the functions below isolate each bug.

Chapter: Applications, open problems and FAQ (the clinic); MAML. References:
:cite:t:`finn2017model`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from companion.meta.functional import inner_adapt

__all__ = [
    "correct_fast_weights",
    "correct_meta_gradient",
    "correct_meta_train",
    "correct_steps",
    "mistaken_fast_state",
    "mistaken_meta_gradient",
    "mistaken_meta_train",
    "mistaken_steps",
]

Task = tuple[Tensor, Tensor, Tensor, Tensor]  # support_x, support_y, query_x, query_y


def mistaken_meta_gradient(model: nn.Module, task: Task, *, inner_lr: float) -> list[Tensor]:
    """MISTAKEN (bug 1): one inner step, written back with ``load_state_dict``.

    Symptom: the returned gradient lacks the second-order term, and the model's weights have
    been overwritten by the adapted ones.
    """
    sx, sy, qx, qy = task
    params = list(model.parameters())
    grads = torch.autograd.grad(F.mse_loss(model(sx), sy), params, create_graph=True)
    fast = [p - inner_lr * g for p, g in zip(params, grads, strict=True)]
    model.load_state_dict(dict(zip([n for n, _ in model.named_parameters()], fast,
                                   strict=True)), strict=False)  # copies values: graph cut
    loss = F.mse_loss(model(qx), qy)
    return list(torch.autograd.grad(loss, params))


def correct_meta_gradient(model: nn.Module, task: Task, *, inner_lr: float) -> list[Tensor]:
    """CORRECTED: fast weights as a function of the meta-parameters (``inner_adapt``)."""
    sx, sy, qx, qy = task
    params = dict(model.named_parameters())
    fast = inner_adapt(model, params, sx, sy, loss_fn=F.mse_loss, steps=1, lr=inner_lr)
    loss = F.mse_loss(functional_call(model, fast, (qx,)), qy)
    return list(torch.autograd.grad(loss, list(params.values())))


def mistaken_fast_state(model: nn.Module, fast: Sequence[Tensor]) -> dict[str, Tensor]:
    """MISTAKEN (bug 3): names from ``state_dict()``, which lists buffers too.

    Symptom: with a BatchNorm layer, the weights after it are stored under the names of the
    running statistics, and the last layers' names get no value.
    """
    return dict(zip(model.state_dict(), fast, strict=False))


def correct_fast_weights(model: nn.Module, fast: Sequence[Tensor]) -> dict[str, Tensor]:
    """CORRECTED: names from ``named_parameters()``, in the order of ``parameters()``."""
    return dict(zip([n for n, _ in model.named_parameters()], fast, strict=True))


def mistaken_steps(take_step: Callable[[], None], *, inner_lr: float, inner_steps: int) -> None:
    """MISTAKEN (bug 2): the loop bound is the learning rate. Symptom: no step for lr < 1."""
    for _ in range(int(inner_lr)):
        take_step()


def correct_steps(take_step: Callable[[], None], *, inner_lr: float, inner_steps: int) -> None:
    """CORRECTED: ``inner_steps`` steps (``inner_lr`` is the size of each)."""
    for _ in range(inner_steps):
        take_step()


def _meta_loss(model: nn.Module, tasks: Sequence[Task], inner_lr: float) -> Tensor:
    params = dict(model.named_parameters())
    losses = []
    for sx, sy, qx, qy in tasks:
        fast = inner_adapt(model, params, sx, sy, loss_fn=F.mse_loss, steps=1, lr=inner_lr)
        losses.append(F.mse_loss(functional_call(model, fast, (qx,)), qy))
    return torch.stack(losses).mean()


def mistaken_meta_train(model: nn.Module, tasks: Sequence[Task], meta_optimizer:
                        torch.optim.Optimizer, *, inner_lr: float, iterations: int) -> list[float]:
    """MISTAKEN (bug 4): backward without ``meta_optimizer.step()``. Symptom: a flat loss."""
    history = []
    for _ in range(iterations):
        meta_optimizer.zero_grad()
        loss = _meta_loss(model, tasks, inner_lr)
        loss.backward()
        history.append(loss.item())
    return history


def correct_meta_train(model: nn.Module, tasks: Sequence[Task], meta_optimizer:
                       torch.optim.Optimizer, *, inner_lr: float, iterations: int) -> list[float]:
    """CORRECTED: zero_grad, backward, **step** (or let :func:`companion.fit` do it)."""
    history = []
    for _ in range(iterations):
        meta_optimizer.zero_grad()
        loss = _meta_loss(model, tasks, inner_lr)
        loss.backward()
        meta_optimizer.step()
        history.append(loss.item())
    return history
