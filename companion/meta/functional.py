"""The functional core of optimisation-based meta-learning.

The model stays an ordinary ``nn.Module``; its weights are passed around as a dict
``{name: tensor}`` and applied with :func:`torch.func.functional_call`. Adapting to a task is a
pure function of (meta-parameters, support set), built from :func:`torch.func.grad`, so it

* composes with ordinary autograd: back-propagating through the adapted weights gives the
  exact second-order meta-gradient (or the first-order one, if the inner gradients are
  detached);
* composes with :func:`torch.func.vmap`: one call adapts a whole stacked batch of tasks.

MAML, first-order MAML, ANIL and Meta-SGD (:mod:`companion.meta.maml`) and Reptile all use
:func:`inner_adapt`; nothing clones modules or edits private attributes.

Chapter: MAML. References: :cite:t:`finn2017model`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from torch import Tensor, nn
from torch.func import functional_call, grad

__all__ = ["Params", "check_params", "inner_adapt", "named_params"]

Params = dict[str, Tensor]
LossFn = Callable[[Tensor, Tensor], Tensor]


def named_params(model: nn.Module) -> Params:
    """The model's parameters as a ``{name: tensor}`` dict (the tensors themselves, not copies)."""
    return dict(model.named_parameters())


def check_params(model: nn.Module, params: Mapping[str, Tensor]) -> None:
    """Raise ``ValueError`` unless ``params`` has exactly the model's parameter names and shapes."""
    expected = {name: p.shape for name, p in model.named_parameters()}
    missing, extra = expected.keys() - params.keys(), params.keys() - expected.keys()
    if missing or extra:
        raise ValueError(f"fast weights do not match the model: missing {sorted(missing)}, "
                         f"unexpected {sorted(extra)}")
    wrong = {k: (tuple(params[k].shape), tuple(s)) for k, s in expected.items()
             if params[k].shape != s}
    if wrong:
        raise ValueError(f"fast weights have the wrong shapes (got, expected): {wrong}")


def inner_adapt(
    model: nn.Module,
    params: Mapping[str, Tensor],
    support_x: Tensor,
    support_y: Tensor,
    *,
    loss_fn: LossFn,
    steps: int,
    lr: float | Mapping[str, Tensor],
    adapt: Sequence[str] | None = None,
    first_order: bool = False,
) -> Params:
    """Take ``steps`` gradient steps on the support loss, functionally.

    ``theta_{t+1} = theta_t - lr * grad L_support(theta_t)`` for the parameters named in
    ``adapt``; the others stay at their meta-values.

    Args:
        model: the network; only its structure is used (``functional_call``).
        params: the starting weights, normally the meta-parameters.
        support_x: ``[n_support, *input_shape]``.
        support_y: ``[n_support]`` labels or ``[n_support, *target_shape]`` targets.
        loss_fn: ``loss_fn(predictions, targets) -> scalar``.
        steps: number of inner steps (>= 0; 0 returns ``params``).
        lr: inner learning rate, a float or a per-parameter dict of tensors (Meta-SGD)
            broadcastable to each parameter.
        adapt: names of the parameters to adapt (default: all); ANIL adapts only the head.
        first_order: detach the inner gradients (first-order MAML): the adapted weights still
            depend on ``params``, but only through the identity, not through the Hessian.

    Returns:
        The adapted weights, a new dict with every name of ``params``.

    Shapes:
        Works per task; wrap in ``vmap`` (with ``params`` unbatched) for a batch of tasks.
    """
    names = tuple(params) if adapt is None else tuple(adapt)
    fixed = {k: v for k, v in params.items() if k not in names}

    def support_loss(adapted: Params) -> Tensor:
        out = functional_call(model, {**fixed, **adapted}, (support_x,))
        return loss_fn(out, support_y)

    fast = {k: params[k] for k in names}
    for _ in range(steps):
        grads = grad(support_loss)(fast)
        if first_order:
            grads = {k: g.detach() for k, g in grads.items()}
        fast = {k: fast[k] - _lr(lr, k) * grads[k] for k in names}
    return {**fixed, **fast}


def _lr(lr: float | Mapping[str, Tensor], name: str) -> float | Tensor:
    return lr[name] if isinstance(lr, Mapping) else lr


def check_inner_args(steps: int, lr: float, name_steps: str = "inner_steps",
                     name_lr: str = "inner_lr") -> None:
    """Shared validation: a non-negative int of steps and a positive finite learning rate."""
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"{name_steps} must be an int >= 0, got {steps!r}")
    if not isinstance(lr, (int, float)) or not lr > 0 or lr != lr or lr == float("inf"):
        raise ValueError(f"{name_lr} must be a positive finite number, got {lr!r}")
