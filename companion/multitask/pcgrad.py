"""PCGrad (Yu et al., NeurIPS 2020): project away the conflicting part of task gradients.

For each task ``i``, start from ``g_i`` and visit the other tasks ``j`` in a random order; if
the current ``g_i^PC`` conflicts with ``g_j`` (``<g_i^PC, g_j> < 0``), project it onto the
normal plane of ``g_j``:

    g_i^PC <- g_i^PC - <g_i^PC, g_j> / ||g_j||^2 * g_j .

The update of the shared parameters is ``sum_i g_i^PC``. Without conflicts, this is the plain
sum of the gradients. Task-specific parameters get their own task's gradient unchanged.

Chapter: Multi-task learning (gradient methods). Reference: :cite:t:`yu2020gradient`.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from companion._checks import generator_from
from companion.multitask._checks import check_tasks
from companion.multitask.gradients import (
    Gradients,
    TaskGradients,
    combine_gradients,
    gradient_dot,
)
from companion.multitask.method import CombinedGradient

__all__ = ["PCGrad", "project_conflicting"]


def project_conflicting(grads: TaskGradients, *, generator: torch.Generator) -> TaskGradients:
    """The projected gradients ``{task: g_i^PC}`` (before summing).

    Args:
        grads: task -> (parameter name -> gradient).
        generator: draws the order in which each task visits the others.
    """
    tasks = check_tasks(grads.keys(), "grads")
    squared = {t: gradient_dot(grads[t], grads[t]) for t in tasks}
    out: TaskGradients = {}
    for i in tasks:
        g: Gradients = dict(grads[i])
        others = [t for t in tasks if t != i]
        for k in torch.randperm(len(others), generator=generator).tolist():
            j = others[k]
            dot = gradient_dot(g, grads[j])
            if float(dot) < 0 and float(squared[j]) > 0:
                coef = dot / squared[j]
                g = {n: g[n] - coef * grads[j][n] for n in g}
        out[i] = g
    return out


class PCGrad:
    """Gradient surgery with the random visiting order drawn from its own generator.

    Args:
        generator: a CPU ``torch.Generator``; or
        seed: a seed for a new one.
    """

    def __init__(self, *, generator: torch.Generator | None = None,
                 seed: int | None = None) -> None:
        self.generator = generator_from(generator, seed)

    def combine(self, grads: TaskGradients, losses: Mapping[str, Tensor]) -> CombinedGradient:
        """``sum_i g_i^PC`` for the shared parameters; loss weights 1 for the heads."""
        projected = project_conflicting(grads, generator=self.generator)
        ones = {t: torch.ones(()) for t in grads}
        device = next(iter(next(iter(grads.values())).values())).device
        weights = {t: w.to(device) for t, w in ones.items()}
        return CombinedGradient(combine_gradients(projected, weights), weights)
