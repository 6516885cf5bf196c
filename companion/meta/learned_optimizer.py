"""A learned optimiser: a coordinate-wise LSTM trained by gradient descent (Andrychowicz et al.).

The optimiser ``m_phi`` maps each coordinate's gradient (and its own LSTM state) to that
coordinate's update, ``theta_{t+1} = theta_t + m_phi(grad_t)``; one small LSTM is shared by
every coordinate, so it works for any number of parameters. ``phi`` is meta-trained by
unrolling ``T`` steps on a problem and descending the meta-loss
``L(phi) = sum_{t=1}^{T} f(theta_t)``. Long unrolls are cut into truncations of ``k`` steps
(truncated back-propagation through time): each truncation is one meta-update, then the
parameters and LSTM states are carried on, detached.

Gradients enter through the paper's preprocessing (appendix A): with ``p = 10``,
``grad -> (log(|grad|) / p, sign(grad))`` if ``|grad| >= e^-p``, else ``(-1, e^p grad)``,
which keeps inputs of very different magnitudes in a range an LSTM can read. Like the paper,
the default drops the second derivatives (``d grad_t / d phi`` treated as 0);
``second_order=True`` keeps them (the exact meta-gradient, which the tests check against
finite differences).

Meta-SGD (:class:`companion.meta.MAML` with ``learn_inner_lr=True``, chapter 2) is the simplest
learned optimiser: a learned step size per weight, ``theta - alpha * grad``, with no state.

Chapter: Model-based meta-learning. References: :cite:t:`andrychowicz2016learning`,
:cite:t:`li2017meta` (Meta-SGD).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from companion._checks import check_positive_float, check_positive_int
from companion.engine.distributed import all_reduce_gradients
from companion.meta.optimizees import Problems

__all__ = ["LSTMOptimizer", "LSTMOptimizerConfig", "Unroll", "baseline_curve",
           "optimizer_curves", "preprocess_gradients"]

State = list[tuple[Tensor, Tensor]]  # (h, c) per LSTM layer, each [n_coordinates, hidden]


def preprocess_gradients(grad: Tensor, p: float = 10.0) -> Tensor:
    """The log-magnitude and sign encoding of Andrychowicz et al., appendix A.

    Both features are continuous in ``grad``: below the threshold ``e^-p`` the first is
    ``-1 = log(e^-p) / p`` and the second ``e^p grad`` reaches ``+-1 = sign(grad)`` there.

    Args:
        grad: ``[N]`` (any shape).
        p: the threshold exponent (paper: 10).

    Returns:
        ``[N, 2]`` (``[*grad.shape, 2]``).
    """
    big = grad.abs() >= math.exp(-p)
    log_part = grad.abs().clamp_min(math.exp(-p)).log() / p  # -1 below the threshold
    sign_part = torch.where(big, grad.sign(), math.exp(p) * grad)
    return torch.stack([log_part, sign_part], dim=-1)


@dataclass(frozen=True)
class LSTMOptimizerConfig:
    """Hyperparameters of :class:`LSTMOptimizer`; defaults are the paper's."""

    hidden_size: int = 20  # LSTM units per layer
    num_layers: int = 2  # stacked LSTM layers
    preprocess: bool = True  # log-magnitude/sign inputs (else the raw gradient)
    p: float = 10.0  # preprocessing threshold exponent
    output_scale: float = 0.1  # the update is output_scale * linear(LSTM output)
    unroll: int = 100  # optimisation steps per training problem (the horizon T)
    truncation: int = 20  # steps per meta-update (truncated BPTT)
    second_order: bool = False  # keep d grad / d phi (the paper drops it)

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_layers", "unroll", "truncation"):
            check_positive_int(name, getattr(self, name))
        check_positive_float("p", self.p)
        check_positive_float("output_scale", self.output_scale)


@dataclass
class Unroll:
    """The result of :meth:`LSTMOptimizer.unroll`.

    Attributes:
        losses: ``[steps + 1, B]``: ``f(theta_0) .. f(theta_steps)`` per problem.
        theta: ``[B, n_params]`` the final parameters.
        state: the LSTM state after the last step.
    """

    losses: Tensor
    theta: Tensor
    state: State

    def meta_loss(self) -> Tensor:
        """``sum_{t >= 1} f(theta_t)``, averaged over the problems (a scalar)."""
        return self.losses[1:].sum(0).mean()


class LSTMOptimizer(nn.Module):
    """A coordinate-wise two-layer LSTM optimiser (see the module docstring).

    Args:
        config: a :class:`LSTMOptimizerConfig`.

    Example:
        >>> opt = LSTMOptimizer()
        >>> meta_opt = torch.optim.Adam(opt.parameters(), lr=1e-3)
        >>> sampler = ProblemSampler.of(QuadraticFamily(), seed=0)
        >>> loss, metrics = opt.training_step(sampler.sample_batch(32), meta_opt)
    """

    def __init__(self, config: LSTMOptimizerConfig | None = None) -> None:
        super().__init__()
        self.config = config or LSTMOptimizerConfig()
        c = self.config
        sizes = [2 if c.preprocess else 1] + [c.hidden_size] * c.num_layers
        self.cells = nn.ModuleList(nn.LSTMCell(i, o) for i, o in itertools.pairwise(sizes))
        self.head = nn.Linear(c.hidden_size, 1)

    def initial_state(self, like: Tensor) -> State:
        """Zero states for ``like.numel()`` coordinates, on its device and dtype."""
        z = like.new_zeros(like.numel(), self.config.hidden_size)
        return [(z, z) for _ in self.cells]

    def forward(self, grad: Tensor, state: State) -> tuple[Tensor, State]:
        """Updates for every coordinate.

        Args:
            grad: ``[N]`` (any shape) gradients.
            state: from :meth:`initial_state` or a previous call.

        Returns:
            ``[N]`` updates (``grad``'s shape) and the new state.
        """
        g = grad.reshape(-1)  # [N]
        x = preprocess_gradients(g, self.config.p) if self.config.preprocess else g[:, None]
        new_state = []
        for cell, (h, c) in zip(self.cells, state, strict=True):
            h, c = cell(x, (h, c))  # [N, hidden] each
            new_state.append((h, c))
            x = h
        update = self.config.output_scale * self.head(x)[:, 0]  # [N]
        return update.view_as(grad), new_state

    def unroll(self, problems: Problems, steps: int, *, theta: Tensor | None = None,
               state: State | None = None, meta: bool = True) -> Unroll:
        """Run ``steps`` optimisation steps on ``problems``.

        Args:
            problems: a batch of problems (``theta0`` ``[B, n]``, ``loss(theta) -> [B]``).
            steps: number of updates.
            theta: start (default ``problems.theta0``); treated as a constant.
            state: LSTM state to continue from (default zeros).
            meta: keep the graph for a meta-gradient (else every step is detached: testing).

        Raises:
            ValueError: NaN or inf in the starting point or in a loss along the way.
        """
        check_positive_int("steps", steps)
        theta = (problems.theta0 if theta is None else theta).detach()
        if not torch.isfinite(theta).all():
            raise ValueError("theta (the starting point) contains NaN or inf")
        state = self.initial_state(theta) if state is None else state
        losses = []
        with torch.enable_grad():
            for _ in range(steps):
                if not theta.requires_grad:
                    theta = theta.requires_grad_()
                loss = problems.loss(theta)  # [B]
                (grad,) = torch.autograd.grad(loss.sum(), theta, retain_graph=meta,
                                              create_graph=meta and self.config.second_order)
                losses.append(loss if meta else loss.detach())
                update, state = self(grad if self.config.second_order else grad.detach(),
                                     state)
                theta = theta + update  # [B, n]
                if not meta:
                    theta = theta.detach()
                    state = [(h.detach(), c.detach()) for h, c in state]
            final = problems.loss(theta)
        losses.append(final if meta else final.detach())
        stacked = torch.stack(losses)  # [steps + 1, B]
        if not torch.isfinite(stacked).all():
            raise ValueError("the loss became NaN or inf along the unroll (the learned "
                             "optimiser diverged on these problems)")
        return Unroll(stacked, theta, state)

    def meta_loss(self, problems: Problems, steps: int | None = None) -> tuple[Tensor,
                                                                              dict[str, Tensor]]:
        """The untruncated meta-loss of a ``steps``-step unroll (default ``config.truncation``)
        and the final loss, for a plain training loop or a gradient check."""
        result = self.unroll(problems, self.config.truncation if steps is None else steps)
        return result.meta_loss(), {"final_loss": result.losses[-1].mean().detach()}

    def training_step(self, problems: Problems,
                      optimizer: torch.optim.Optimizer | tuple[torch.optim.Optimizer, ...]
                      ) -> tuple[Tensor, dict[str, Tensor]]:
        """One training problem batch: ``unroll`` steps cut into truncations, one meta-update
        per truncation (truncated BPTT). Returns the mean meta-loss per truncation (detached)
        and the final loss.

        With several processes (``torchrun``; see :mod:`companion.engine.distributed`) each
        process unrolls its own share of the problems and the meta-gradients are averaged
        over the processes before every meta-update, as :func:`companion.fit` does for
        learners without a ``training_step``; with one process nothing changes.

        Args:
            problems: a batch of training problems (e.g. ``ProblemSampler.sample_batch(n)``).
            optimizer: the meta-optimiser of this module's parameters (or a 1-tuple of it, as
                the training engine passes the optimisers it was given).
        """
        if isinstance(optimizer, tuple):
            if len(optimizer) != 1:
                raise ValueError(f"optimizer: one meta-optimiser expected, got {len(optimizer)}")
            optimizer = optimizer[0]
        c = self.config
        theta, state, total, done = problems.theta0, None, 0.0, 0
        while done < c.unroll:
            steps = min(c.truncation, c.unroll - done)
            result = self.unroll(problems, steps, theta=theta, state=state)
            loss = result.meta_loss()
            optimizer.zero_grad()
            loss.backward()
            all_reduce_gradients(self.parameters())  # the mean over processes (no-op: one)
            optimizer.step()
            theta = result.theta.detach()
            state = [(h.detach(), cc.detach()) for h, cc in result.state]
            total, done = total + loss.item(), done + steps
        n_truncations = math.ceil(c.unroll / c.truncation)
        final = problems.loss(theta).mean().detach()
        return torch.tensor(total / n_truncations), {"final_loss": final}


BASELINES = ("sgd", "adam")


def baseline_curve(problems: Problems, name: str, lr: float, steps: int) -> Tensor:
    """Loss curve of a hand-designed optimiser (``"sgd"`` or ``"adam"``) with step size ``lr``.

    Each problem is optimised independently (the losses are summed, and neither optimiser
    mixes coordinates).

    Returns:
        ``[steps + 1, B]``: the loss of every problem before each step and after the last.
    """
    if name not in BASELINES:
        raise ValueError(f"name must be one of {BASELINES}, got {name!r}")
    check_positive_float("lr", lr)
    check_positive_int("steps", steps)
    theta = problems.theta0.detach().clone().requires_grad_()
    opt: torch.optim.Optimizer = (torch.optim.SGD([theta], lr=lr) if name == "sgd"
                                  else torch.optim.Adam([theta], lr=lr))
    curve = []
    with torch.enable_grad():
        for _ in range(steps):
            loss = problems.loss(theta)  # [B]
            curve.append(loss.detach())
            opt.zero_grad()
            loss.sum().backward()
            opt.step()
        curve.append(problems.loss(theta).detach())
    return torch.stack(curve)  # [steps + 1, B]


def optimizer_curves(problems: Problems, learned: LSTMOptimizer, *, steps: int,
                     sgd_lrs: tuple[float, ...] = (), adam_lrs: tuple[float, ...] = ()
                     ) -> dict[str, Tensor]:
    """Loss curves of the learned optimiser and of SGD and Adam on the same held-out problems.

    Args:
        problems: problems the learned optimiser was not trained on.
        learned: the trained optimiser.
        steps: optimisation steps (try more than its training ``unroll`` to see it fail).
        sgd_lrs: learning rates for SGD (a tuned one is the best of several).
        adam_lrs: learning rates for Adam.

    Returns:
        ``{"learned": ..., "sgd lr=0.01": ..., "adam lr=0.1": ...}``, each ``[steps + 1, B]``;
        average over the last dimension for a curve. A diverging learned optimiser raises.
    """
    curves = {"learned": learned.unroll(problems, steps, meta=False).losses}
    for name, lrs in (("sgd", sgd_lrs), ("adam", adam_lrs)):
        for lr in lrs:
            curves[f"{name} lr={lr:g}"] = baseline_curve(problems, name, lr, steps)
    return curves
