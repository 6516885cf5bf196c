"""Synthetic task families: sinusoid regression from the MAML paper.

Each task is ``y = A sin(x - phi)`` with amplitude ``A ~ U[0.1, 5.0]``, phase
``phi ~ U[0, pi]`` and inputs ``x ~ U[-5, 5]`` (Finn et al., 2017, section 5.1).

Chapter: MAML (sinusoid regression). Reference: :cite:t:`finn2017model`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from companion._checks import check_generator, check_positive_int, generator_from
from companion.data.episode import EpisodeBatch

__all__ = ["Sinusoid", "SinusoidSampler", "SinusoidTasks"]


@dataclass(frozen=True, eq=False)
class Sinusoid:
    """A batch of sinusoid functions.

    Args:
        amplitude: ``[n_tasks]``.
        phase: ``[n_tasks]``.
    """

    amplitude: Tensor
    phase: Tensor

    def __call__(self, x: Tensor) -> Tensor:
        """``x`` ``[n_tasks, n, 1]`` -> ``y`` ``[n_tasks, n, 1]``."""
        return self.amplitude[:, None, None] * torch.sin(x - self.phase[:, None, None])

    def __len__(self) -> int:
        return self.amplitude.shape[0]


def _check_range(name: str, lo_hi: tuple[float, float]) -> tuple[float, float]:
    lo, hi = (float(v) for v in lo_hi)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise ValueError(f"{name} must be a finite (low, high) pair with low <= high, got {lo_hi}")
    return lo, hi


@dataclass(frozen=True)
class SinusoidTasks:
    """The distribution over sinusoid regression tasks.

    Args:
        amplitude: range of the amplitude (default the paper's ``[0.1, 5.0]``).
        phase: range of the phase (default ``[0, pi]``).
        x_range: range of the inputs (default ``[-5, 5]``).
    """

    amplitude: tuple[float, float] = (0.1, 5.0)
    phase: tuple[float, float] = (0.0, math.pi)
    x_range: tuple[float, float] = (-5.0, 5.0)

    def __post_init__(self) -> None:
        for name in ("amplitude", "phase", "x_range"):
            object.__setattr__(self, name, _check_range(name, getattr(self, name)))

    def sample_tasks(self, n_tasks: int, *, generator: torch.Generator) -> Sinusoid:
        """Draw ``n_tasks`` functions."""
        check_positive_int("n_tasks", n_tasks)
        return Sinusoid(self._uniform(self.amplitude, (n_tasks,), generator),
                        self._uniform(self.phase, (n_tasks,), generator))

    def sample_inputs(self, n_tasks: int, n: int, *, generator: torch.Generator) -> Tensor:
        """``[n_tasks, n, 1]`` inputs drawn uniformly from ``x_range``."""
        return self._uniform(self.x_range, (n_tasks, n, 1), generator)

    def sample(self, n_tasks: int, *, n_support: int, n_query: int,
               generator: torch.Generator) -> tuple[EpisodeBatch, Sinusoid]:
        """Draw tasks and their support/query points.

        Returns:
            The episodes (``support_x`` ``[n_tasks, n_support, 1]``, ``support_y`` likewise;
            query the same with ``n_query``) and the functions, for plotting the truth.
        """
        check_positive_int("n_support", n_support)
        check_positive_int("n_query", n_query)
        tasks = self.sample_tasks(n_tasks, generator=generator)
        xs = self.sample_inputs(n_tasks, n_support + n_query, generator=generator)
        ys = tasks(xs)
        episodes = EpisodeBatch(xs[:, :n_support], ys[:, :n_support],
                                xs[:, n_support:], ys[:, n_support:])
        return episodes, tasks

    def sampler(self, *, n_support: int, n_query: int, generator: torch.Generator | None = None,
                seed: int | None = None) -> SinusoidSampler:
        """A task source for :func:`companion.fit` (``sample_batch(n)``) with its own generator."""
        check_positive_int("n_support", n_support)
        check_positive_int("n_query", n_query)
        return SinusoidSampler(self, n_support, n_query, generator_from(generator, seed))

    @staticmethod
    def _uniform(lo_hi: tuple[float, float], shape: tuple[int, ...],
                 generator: torch.Generator) -> Tensor:
        lo, hi = lo_hi
        return lo + (hi - lo) * torch.rand(shape, generator=check_generator(generator))


@dataclass
class SinusoidSampler:
    """Draws batches of sinusoid episodes from ``tasks`` with ``generator`` (see ``sampler``)."""

    tasks: SinusoidTasks
    n_support: int
    n_query: int
    generator: torch.Generator

    def sample_batch(self, n_tasks: int) -> EpisodeBatch:
        episodes, _ = self.tasks.sample(n_tasks, n_support=self.n_support, n_query=self.n_query,
                                        generator=self.generator)
        return episodes
