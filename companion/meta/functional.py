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

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad

__all__ = ["AdamMoments", "Params", "check_params", "inner_adapt", "named_params",
           "predict_queries"]

Params = dict[str, Tensor]
LossFn = Callable[[Tensor, Tensor], Tensor]


@dataclass
class AdamMoments:
    """The state of the functional Adam of :func:`inner_adapt`, carried from call to call.

    Reptile's reference implementation keeps its inner Adam's statistics across tasks (only
    the weights are reset to the meta-parameters): pass the same object to every call and
    :func:`inner_adapt` continues from it and leaves the new state in it. ``m`` and ``v`` are
    the first and second moments, ``t`` the number of steps taken so far.
    """

    m: Params
    v: Params
    t: int = 0

    @staticmethod
    def zeros_like(params: Mapping[str, Tensor]) -> AdamMoments:
        return AdamMoments({k: torch.zeros_like(p) for k, p in params.items()},
                           {k: torch.zeros_like(p) for k, p in params.items()})

    def copy(self) -> AdamMoments:
        return AdamMoments(dict(self.m), dict(self.v), self.t)


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
    optimizer: str = "sgd",
    batch_size: int | None = None,
    generator: torch.Generator | None = None,
    adam_betas: tuple[float, float] = (0.0, 0.999),
    adam_eps: float = 1e-8,
    adam_state: AdamMoments | None = None,
) -> Params:
    """Take ``steps`` gradient steps on the support loss, functionally.

    ``theta_{t+1} = theta_t - lr * grad L_support(theta_t)`` (SGD, the default) for the
    parameters named in ``adapt``; the others stay at their meta-values.

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
        optimizer: ``"sgd"`` or ``"adam"`` (a functional Adam with ``adam_betas`` and
            ``adam_eps``; Reptile uses it with beta1 = 0, as its paper does).
        batch_size: examples per step, drawn as consecutive slices of a random permutation of
            the support set (a new permutation each pass); None uses the whole set every step.
        generator: draws the permutations; required when ``batch_size`` is given.
        adam_state: continue Adam from this state and leave the final state in it (for
            Reptile's persistent inner statistics); None starts from zero moments.

    Returns:
        The adapted weights, a new dict with every name of ``params``.

    Shapes:
        Works per task; wrap in ``vmap`` (with ``params`` unbatched) for a batch of tasks
        (full-batch steps only).
    """
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    if optimizer == "adam" and not first_order:
        raise ValueError("optimizer='adam' needs first_order=True: Adam's square root has an "
                         "infinite derivative at zero, so second-order gradients through it "
                         "are NaN wherever a gradient entry is exactly 0")
    names = tuple(params) if adapt is None else tuple(adapt)
    fixed = {k: v for k, v in params.items() if k not in names}

    def support_loss(adapted: Params, x: Tensor, y: Tensor) -> Tensor:
        out = functional_call(model, {**fixed, **adapted}, (x,))
        return loss_fn(out, y)

    fast = {k: params[k] for k in names}
    batches = _minibatches(support_x.shape[0], steps, batch_size, generator)
    moments: tuple[Params, Params] | None = None
    t0 = 0
    if adam_state is not None:
        if optimizer != "adam":
            raise ValueError("adam_state is only meaningful with optimizer='adam'")
        moments, t0 = ({k: adam_state.m[k] for k in names},
                       {k: adam_state.v[k] for k in names}), adam_state.t
    for step in range(steps):
        rows = next(batches)
        x, y = (support_x, support_y) if rows is None else (support_x[rows], support_y[rows])
        grads = grad(support_loss)(fast, x, y)
        if first_order:
            grads = {k: g.detach() for k, g in grads.items()}
        if optimizer == "sgd":
            fast = {k: fast[k] - _lr(lr, k) * grads[k] for k in names}
        else:
            fast, moments = _adam_step(fast, grads, moments, t0 + step + 1, lr, adam_betas,
                                       adam_eps)
    if adam_state is not None and moments is not None:
        adam_state.m.update(moments[0])
        adam_state.v.update(moments[1])
        adam_state.t = t0 + steps
    return {**fixed, **fast}


def _minibatches(n: int, steps: int, batch_size: int | None,
                 generator: torch.Generator | None) -> Iterator[Tensor | None]:
    """Row indices for each step: slices of random permutations, or None for full batches."""
    if batch_size is None:
        while True:
            yield None
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
    if generator is None:
        raise ValueError("batch_size needs generator= to draw the minibatches")
    size = min(batch_size, n)
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - size + 1, size):
            yield order[start:start + size]


def _adam_step(fast: Params, grads: Params, moments: tuple[Params, Params] | None, t: int,
               lr: float | Mapping[str, Tensor], betas: tuple[float, float],
               eps: float) -> tuple[Params, tuple[Params, Params]]:
    """One functional Adam step (bias-corrected moments)."""
    b1, b2 = betas
    m_prev, v_prev = moments if moments is not None else (
        {k: torch.zeros_like(g) for k, g in grads.items()},
        {k: torch.zeros_like(g) for k, g in grads.items()})
    m = {k: b1 * m_prev[k] + (1 - b1) * g for k, g in grads.items()}
    v = {k: b2 * v_prev[k] + (1 - b2) * g * g for k, g in grads.items()}
    new = {k: fast[k] - _lr(lr, k) * (m[k] / (1 - b1**t))
           / ((v[k] / (1 - b2**t)).sqrt() + eps) for k in fast}
    return new, (m, v)


def _lr(lr: float | Mapping[str, Tensor], name: str) -> float | Tensor:
    return lr[name] if isinstance(lr, Mapping) else lr


def check_running_stats(model: nn.Module, who: str) -> None:
    """Refuse BatchNorm layers that update running statistics: inside ``torch.func.grad`` the
    in-place update fails, and under ``vmap`` the second-order gradient is wrong."""
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            raise ValueError(
                f"model layer {name!r} is a BatchNorm with running statistics, which {who} "
                "cannot adapt through; build the model with companion.models.BatchStatNorm2d "
                "(e.g. Conv4(norm='batch_stats')), or set track_running_stats=False"
            )


def predict_queries(model: nn.Module, params: Mapping[str, Tensor], support_x: Tensor,
                    query_x: Tensor, *, transductive: bool = True) -> Tensor:
    """Predictions for the query set with (adapted) weights ``params``, without gradients.

    Args:
        transductive: classify all queries in one batch, so batch-statistics normalisation
            uses the statistics of the whole query set. If False, classify each query in a
            batch with the support set (statistics of the support plus that one query), as
            Reptile's non-transductive evaluation does; no query sees another.

    Returns:
        ``[n_query, ...]`` model outputs.
    """
    with torch.no_grad():
        if transductive:
            return functional_call(model, dict(params), (query_x,))
        n = support_x.shape[0]

        def one(query: Tensor) -> Tensor:
            batch = torch.cat([support_x, query[None]])  # [n_support + 1, ...]
            return functional_call(model, dict(params), (batch,))[n]

        return torch.vmap(one)(query_x)
