"""Problem families for learned optimisers: random quadratics and a small MLP classifier.

A *problem* (an "optimizee") is a batch of ``B`` independent functions of a flat parameter
vector: ``loss(theta)`` maps ``theta`` ``[B, n_params]`` to ``[B]`` losses, and ``theta0``
``[B, n_params]`` is where optimisation starts. :class:`LSTMOptimizer` is trained on one
family and tested on held-out problems from it (or from another family, to see it fail).

* :class:`QuadraticFamily`: ``f(theta) = ||W theta - y||^2`` with ``W``, ``y`` and ``theta0``
  standard normal (Andrychowicz et al., 2016, section 3.1: 10 dimensions).
* :class:`MLPFamily`: cross-entropy of a one-hidden-layer sigmoid MLP on a random problem:
  Gaussian inputs labelled by a random linear teacher (the paper uses MNIST; this keeps the
  problems cheap and endless).

Chapter: Model-based meta-learning. Reference: :cite:t:`andrychowicz2016learning`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from companion._checks import check_positive_int, generator_from

__all__ = ["MLPFamily", "MLPProblems", "ProblemSampler", "Problems", "QuadraticFamily",
           "QuadraticProblems"]


class Problems(Protocol):
    """A batch of problems: ``loss(theta [B, n_params]) -> [B]`` and a start ``theta0``."""

    theta0: Tensor

    def loss(self, theta: Tensor) -> Tensor: ...


class Family(Protocol):
    def sample(self, n_problems: int, *, generator: torch.Generator,
               dtype: torch.dtype = torch.float32) -> Problems: ...


def _check_theta(theta: Tensor, theta0: Tensor) -> None:
    if theta.shape != theta0.shape:
        raise ValueError(f"theta must have shape {tuple(theta0.shape)}, got {tuple(theta.shape)}")


@dataclass(frozen=True, eq=False)
class QuadraticProblems:
    """``B`` quadratics ``f_b(theta) = ||W_b theta - y_b||^2``.

    Args:
        W: ``[B, m, n]``.
        y: ``[B, m]``.
        theta0: ``[B, n]`` starting points.
    """

    W: Tensor
    y: Tensor
    theta0: Tensor

    def loss(self, theta: Tensor) -> Tensor:
        """``theta`` ``[B, n]`` -> ``[B]``."""
        _check_theta(theta, self.theta0)
        residual = torch.einsum("bmn,bn->bm", self.W, theta) - self.y  # [B, m]
        return residual.pow(2).sum(-1)  # [B]


@dataclass(frozen=True)
class QuadraticFamily:
    """Random quadratics in ``dim`` dimensions with ``n_rows`` residuals (paper: 10 and 10)."""

    dim: int = 10
    n_rows: int = 10

    def __post_init__(self) -> None:
        check_positive_int("dim", self.dim)
        check_positive_int("n_rows", self.n_rows)

    def sample(self, n_problems: int, *, generator: torch.Generator,
               dtype: torch.dtype = torch.float32) -> QuadraticProblems:
        check_positive_int("n_problems", n_problems)
        b, m, n = n_problems, self.n_rows, self.dim
        return QuadraticProblems(torch.randn(b, m, n, generator=generator, dtype=dtype),
                                 torch.randn(b, m, generator=generator, dtype=dtype),
                                 torch.randn(b, n, generator=generator, dtype=dtype))


@dataclass(frozen=True, eq=False)
class MLPProblems:
    """``B`` classification problems for an MLP ``in_dim -> hidden (sigmoid) -> n_classes``.

    Args:
        x: ``[B, N, in_dim]`` inputs.
        labels: ``[B, N]`` int64 classes.
        theta0: ``[B, n_params]`` initial weights, flattened as ``W1, b1, W2, b2``.
        hidden: hidden units.
        n_classes: output classes.
    """

    x: Tensor
    labels: Tensor
    theta0: Tensor
    hidden: int
    n_classes: int

    def loss(self, theta: Tensor) -> Tensor:
        """Mean cross-entropy per problem: ``theta`` ``[B, n_params]`` -> ``[B]``."""
        _check_theta(theta, self.theta0)
        b, n, d = self.x.shape
        h, c = self.hidden, self.n_classes
        w1, b1, w2, b2 = theta.split([h * d, h, c * h, c], dim=1)
        z = torch.sigmoid(self.x @ w1.view(b, h, d).transpose(1, 2) + b1[:, None])  # [B, N, h]
        logits = z @ w2.view(b, c, h).transpose(1, 2) + b2[:, None]  # [B, N, c]
        ce = F.cross_entropy(logits.flatten(0, 1), self.labels.flatten(), reduction="none")
        return ce.view(b, n).mean(1)  # [B]


@dataclass(frozen=True)
class MLPFamily:
    """Random MLP training problems (see the module docstring).

    Args:
        in_dim: input size.
        hidden: hidden sigmoid units.
        n_classes: classes (labels are the argmax of a random linear map of ``x``).
        n_examples: training examples per problem (full-batch loss).
    """

    in_dim: int = 4
    hidden: int = 8
    n_classes: int = 2
    n_examples: int = 64

    def __post_init__(self) -> None:
        for name in ("in_dim", "hidden", "n_examples"):
            check_positive_int(name, getattr(self, name))
        if not isinstance(self.n_classes, int) or self.n_classes < 2:
            raise ValueError(f"n_classes must be an int >= 2, got {self.n_classes!r}")

    @property
    def n_params(self) -> int:
        return self.hidden * (self.in_dim + 1) + self.n_classes * (self.hidden + 1)

    def sample(self, n_problems: int, *, generator: torch.Generator,
               dtype: torch.dtype = torch.float32) -> MLPProblems:
        check_positive_int("n_problems", n_problems)
        b, d, h, c = n_problems, self.in_dim, self.hidden, self.n_classes
        x = torch.randn(b, self.n_examples, d, generator=generator, dtype=dtype)
        teacher = torch.randn(b, d, c, generator=generator, dtype=dtype)
        labels = (x @ teacher).argmax(-1)  # [B, N]
        scale = torch.tensor([1 / math.sqrt(d)] * (h * d + h) + [1 / math.sqrt(h)] * (c * h + c),
                             dtype=dtype)
        theta0 = torch.randn(b, self.n_params, generator=generator, dtype=dtype) * scale
        return MLPProblems(x, labels, theta0, h, c)


@dataclass
class ProblemSampler:
    """Draws batches of problems from ``family`` with its own ``generator`` (a task source
    with ``sample_batch(n)``, like the episode samplers)."""

    family: Family
    generator: torch.Generator
    dtype: torch.dtype = torch.float32

    @staticmethod
    def of(family: Family, *, generator: torch.Generator | None = None,
           seed: int | None = None, dtype: torch.dtype = torch.float32) -> ProblemSampler:
        return ProblemSampler(family, generator_from(generator, seed), dtype)

    def sample_batch(self, n_problems: int) -> Problems:
        return self.family.sample(n_problems, generator=self.generator, dtype=self.dtype)
