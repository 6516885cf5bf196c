"""Checks for the exercises of the metric chapter (queries per class, ProtoNet as a linear
classifier, the softmax bound of cosine similarities).

Chapter: Metric-based meta-learning, Exercises 1, 2 and 3.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from companion.exercises._check import confirm, require, require_close
from companion.exercises.concepts import check_queries_per_class

__all__ = ["check_linear_classifier", "check_queries_per_class", "check_softmax_bound"]


def check_linear_classifier(
        linear_from_prototypes: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
) -> None:
    """Exercise 2: weights ``[N, D]`` and biases ``[N]`` of the linear layer whose softmax
    equals a prototypical network's with squared Euclidean distance.

    Args:
        linear_from_prototypes: your function of the prototypes ``[N, D]``.

    Raises:
        AssertionError: a wrong result, with a hint.
    """
    g = torch.Generator().manual_seed(2)
    prototypes = torch.randn(5, 8, generator=g, dtype=torch.float64)
    queries = torch.randn(11, 8, generator=g, dtype=torch.float64)
    weights, biases = linear_from_prototypes(prototypes)
    weights, biases = torch.as_tensor(weights), torch.as_tensor(biases)
    require(tuple(weights.shape) == (5, 8) and tuple(biases.shape) == (5,),
            f"expected weights of shape (5, 8) and biases (5,), got {tuple(weights.shape)} "
            f"and {tuple(biases.shape)}.")
    expected = (-torch.cdist(queries, prototypes) ** 2).softmax(1)
    result = (queries @ weights.T.double() + biases.double()).softmax(1)
    require(torch.allclose(result, expected, atol=1e-9),
            "the softmax differs from ProtoNet's. Expand -|f(x) - c_k|^2 and drop the term "
            "that is the same for every class.")
    confirm("w_k = 2 c_k, b_k = -|c_k|^2: ProtoNet is a linear classifier built from the "
            "support set.")


def check_softmax_bound(p_max: float, min_loss: float, *, n_way: int = 20,
                        scale: float = 1.0) -> None:
    """Exercise 3: with similarities in ``[0, 1]`` multiplied by ``scale``, the largest
    probability an ``n_way`` softmax can give a class, and the smallest loss (in nats).

    Args:
        p_max: your bound on the probability.
        min_loss: your bound on the cross-entropy loss.
        n_way: number of classes.
        scale: the factor the similarities are multiplied by.

    Raises:
        ValueError: ``n_way`` is smaller than 2.
        AssertionError: a wrong answer, with a hint.
    """
    if n_way < 2:
        raise ValueError(f"n_way must be at least 2, got {n_way}")
    bound = math.exp(scale) / (math.exp(scale) + n_way - 1)
    require_close(p_max, bound, name="largest probability", rel=1e-3,
                  hint="The probability of class k is largest when its similarity is 1 and "
                       "all others are 0.")
    require_close(min_loss, -math.log(bound), name="smallest loss", rel=1e-3,
                  hint="The loss is -ln p of the right class.")
    confirm(f"p <= {bound:.4f}, loss >= {-math.log(bound):.3f} nats ({n_way} ways, scale "
            f"{scale}).")
