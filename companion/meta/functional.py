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
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad

from companion._checks import check_non_negative_int
from companion.meta.inner import AdamMoments, InnerAdam, InnerOptimizer, InnerSGD, minibatch_rows

__all__ = ["AdamMoments", "Params", "check_params", "inner_adapt", "named_params",
           "param_key", "predict_queries"]

Params = dict[str, Tensor]
LossFn = Callable[[Tensor, Tensor], Tensor]


def named_params(model: nn.Module) -> Params:
    """The model's parameters as a ``{name: tensor}`` dict (the tensors themselves, not copies)."""
    return dict(model.named_parameters())


def param_key(name: str) -> str:
    """A parameter name usable as a ``ParameterDict`` key or buffer name (no dots)."""
    return name.replace(".", "__")


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
    lr: float | Mapping[str, Tensor] | None = None,
    adapt: Sequence[str] | None = None,
    first_order: bool = False,
    optimizer: str | InnerOptimizer = "sgd",
    batch_size: int | None = None,
    generator: torch.Generator | None = None,
    adam_betas: tuple[float, float] = (0.0, 0.999),
    adam_eps: float = 1e-8,
    adam_state: AdamMoments | None = None,
) -> Params:
    """Take ``steps`` gradient steps on the support loss, functionally.

    ``theta_{t+1} = theta_t - lr * grad L_support(theta_t)`` (SGD, the default) for the
    parameters named in ``adapt`` whose module parameter has ``requires_grad=True``; the
    others (frozen layers included) stay at their meta-values.

    Args:
        model: the network; only its structure and its parameters' ``requires_grad`` flags
            are used (``functional_call``).
        params: the starting weights, normally the meta-parameters.
        support_x: ``[n_support, *input_shape]``.
        support_y: ``[n_support]`` labels or ``[n_support, *target_shape]`` targets.
        loss_fn: ``loss_fn(predictions, targets) -> scalar``.
        steps: number of inner steps (>= 0; 0 returns ``params``).
        lr: inner learning rate (> 0), a float or a per-parameter dict of tensors (Meta-SGD)
            broadcastable to each parameter; not needed when ``optimizer`` is an object.
        adapt: names of the parameters to adapt (default: all); ANIL adapts only the head.
        first_order: detach the inner gradients (first-order MAML): the adapted weights still
            depend on ``params``, but only through the identity, not through the Hessian.
        optimizer: ``"sgd"``, ``"adam"`` (:class:`~companion.meta.inner.InnerAdam` with
            ``adam_betas`` and ``adam_eps``; Reptile uses beta1 = 0, as its paper does), or an
            inner-optimiser object (:class:`~companion.meta.inner.InnerOptimizer`).
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
    check_non_negative_int("steps", steps)
    if support_x.shape[0] != support_y.shape[0]:
        raise ValueError(f"support_x has {support_x.shape[0]} examples but support_y has "
                         f"{support_y.shape[0]}")
    opt = _inner_optimizer(optimizer, lr, first_order, adam_betas, adam_eps)
    if adam_state is not None and not isinstance(opt, InnerAdam):
        raise ValueError("adam_state is only meaningful with optimizer='adam'")
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    names = tuple(n for n in (tuple(params) if adapt is None else tuple(adapt))
                  if n not in frozen)
    fixed = {k: v for k, v in params.items() if k not in names}

    def support_loss(adapted: Params, x: Tensor, y: Tensor) -> Tensor:
        out = functional_call(model, {**fixed, **adapted}, (x,))
        return loss_fn(out, y)

    fast = {k: params[k] for k in names}
    if adam_state is not None:
        state: Any = AdamMoments({k: adam_state.m[k] for k in names},
                                 {k: adam_state.v[k] for k in names}, adam_state.t)
    else:
        state = opt.init(fast)
    batches = minibatch_rows(support_x.shape[0], batch_size, generator)
    for _ in range(steps):
        rows = next(batches)
        x, y = (support_x, support_y) if rows is None else (support_x[rows], support_y[rows])
        grads = grad(support_loss)(fast, x, y)
        if first_order:
            grads = {k: g.detach() for k, g in grads.items()}
        fast, state = opt.step(fast, grads, state)
    if adam_state is not None and steps:
        adam_state.m.update(state.m)
        adam_state.v.update(state.v)
        adam_state.t = state.t
    return {**fixed, **fast}


def _inner_optimizer(optimizer: str | InnerOptimizer, lr: float | Mapping[str, Tensor] | None,
                     first_order: bool, betas: tuple[float, float], eps: float
                     ) -> InnerOptimizer:
    if not isinstance(optimizer, str):
        if not (callable(getattr(optimizer, "init", None))
                and callable(getattr(optimizer, "step", None))):
            raise ValueError(f"optimizer must be 'sgd', 'adam' or an inner optimiser with init() "
                             f"and step(), got {optimizer!r}")
        opt = optimizer
    elif optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    elif lr is None:
        raise ValueError("lr is required with optimizer='sgd' or 'adam'")
    else:
        opt = InnerSGD(lr) if optimizer == "sgd" else InnerAdam(lr, betas, eps)
    if isinstance(opt, InnerAdam) and not first_order:
        raise ValueError("optimizer='adam' needs first_order=True: Adam's square root has an "
                         "infinite derivative at zero, so second-order gradients through it "
                         "are NaN wherever a gradient entry is exactly 0")
    return opt


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


QUERY_BATCHING = ("auto", "vmap", "loop")


def predict_queries(model: nn.Module, params: Mapping[str, Tensor], support_x: Tensor,
                    query_x: Tensor, *, transductive: bool = True,
                    query_batching: str = "auto") -> Tensor:
    """Predictions for the query set with (adapted) weights ``params``, without gradients.

    Args:
        transductive: classify all queries in one batch, so batch-statistics normalisation
            uses the statistics of the whole query set. If False, classify each query in a
            batch with the support set (statistics of the support plus that one query), as
            Reptile's non-transductive evaluation does; no query sees another.
        query_batching: how the non-transductive passes run: ``"vmap"`` (all queries at
            once), ``"loop"`` (one forward pass per query) or ``"auto"``: the loop on a CPU,
            where it measured faster (``benchmarks/eval_speed.py``: 0.52 s against 0.70 s per
            MAML test episode on one thread), ``vmap`` elsewhere. Same predictions either way.

    Returns:
        ``[n_query, ...]`` model outputs.
    """
    if query_batching not in QUERY_BATCHING:
        raise ValueError(f"query_batching must be one of {QUERY_BATCHING}, got "
                         f"{query_batching!r}")
    with torch.no_grad():
        if transductive:
            return functional_call(model, dict(params), (query_x,))
        n = support_x.shape[0]

        def one(query: Tensor) -> Tensor:
            batch = torch.cat([support_x, query[None]])  # [n_support + 1, ...]
            return functional_call(model, dict(params), (batch,))[n]

        use_vmap = (query_batching == "vmap"
                    or (query_batching == "auto" and query_x.device.type != "cpu"))
        return torch.vmap(one)(query_x) if use_vmap else torch.stack([one(q) for q in query_x])
