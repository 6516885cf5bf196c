"""Checks for the exercises of the applications chapter (nDCG by hand, the paired confidence
interval of two recommenders, and the one affine map two stacked linear layers are).

Chapter: Applications, open problems and FAQ, Exercises 1, 2 and 3.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from companion.exercises._check import confirm, require, require_close
from companion.metrics import mean_ci95, ndcg_at_k

__all__ = ["NDCG_PREDICTED", "NDCG_RATINGS", "check_collapse", "check_ndcg", "check_paired_ci"]

NDCG_PREDICTED = (4.1, 3.2, 4.8, 2.0)  # a recommender's predicted ratings of four movies
NDCG_RATINGS = (3.0, 5.0, 4.0, 1.0)  # the user's true ratings of the same movies


def check_ndcg(answer: float) -> None:
    """Exercise 1: nDCG@3 of :data:`NDCG_PREDICTED` against :data:`NDCG_RATINGS`, with gains
    ``2^r - 1`` and discounts ``1 / log2(rank + 1)`` (rank 1 first).

    Raises:
        AssertionError: a wrong number, with a hint.
    """
    expected = float(ndcg_at_k(torch.tensor(NDCG_PREDICTED), torch.tensor(NDCG_RATINGS), 3))
    require_close(answer, expected, name="nDCG@3", rel=1e-3,
                  hint="rank the movies by *predicted* rating (4.8, 4.1, 3.2), take the gains "
                       "of their *true* ratings (15, 7, 31), discount them, and divide by the "
                       "same sum for the ideal order (31, 15, 7).")
    confirm(f"nDCG@3 = {expected:.4f}: the best movie (5 stars) was ranked third.")


def check_paired_ci(half_width: float, *, a: tuple[float, ...] = (0.91, 0.78, 1.02, 0.66,
                                                                  0.85, 0.97),
                    b: tuple[float, ...] = (0.88, 0.71, 1.00, 0.60, 0.84, 0.90)) -> None:
    """Exercise 2: the 95% half-width of the mean per-user difference ``a - b`` (two
    recommenders' MAE on the same six users; normal approximation, as the book's tables).

    Raises:
        AssertionError: a wrong number, with a hint.
    """
    diff = torch.tensor(a, dtype=torch.float64) - torch.tensor(b, dtype=torch.float64)
    expected = mean_ci95(diff, percent=False).ci95
    unpaired = mean_ci95(torch.tensor(a), percent=False).ci95 + mean_ci95(
        torch.tensor(b), percent=False).ci95
    require(abs(half_width - unpaired) > 1e-6,
            "that is the sum of the two separate intervals; pair the users first: take the "
            "six differences and one interval of their mean.")
    require_close(half_width, expected, name="paired half-width", rel=1e-3,
                  hint="1.96 x (sample standard deviation of the differences, n - 1) / sqrt(6).")
    confirm(f"paired half-width {expected:.4f}, against {unpaired:.4f} for the two separate "
            "intervals added: pairing removes the users' shared difficulty.")


def check_collapse(collapse: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
                                      tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Exercise 3: ``collapse(W1, b1, W2, b2) -> (W, b)`` with ``W x + b = W2 (W1 x + b1) + b2``.

    Raises:
        AssertionError: a wrong map, with a hint.
    """
    g = torch.Generator().manual_seed(3)
    w1, b1 = torch.randn(7, 5, generator=g, dtype=torch.float64), torch.randn(
        7, generator=g, dtype=torch.float64)
    w2, b2 = torch.randn(3, 7, generator=g, dtype=torch.float64), torch.randn(
        3, generator=g, dtype=torch.float64)
    w, b = (torch.as_tensor(t, dtype=torch.float64) for t in collapse(w1, b1, w2, b2))
    require(tuple(w.shape) == (3, 5) and tuple(b.shape) == (3,),
            f"expected W of shape (3, 5) and b of shape (3,), got {tuple(w.shape)} and "
            f"{tuple(b.shape)}.")
    x = torch.randn(11, 5, generator=g, dtype=torch.float64)
    require(torch.allclose(x @ w.T + b, (x @ w1.T + b1) @ w2.T + b2),
            "substitute the first layer into the second: W = W2 W1, and the bias picks up "
            "W2 b1.")
    confirm("W = W2 W1, b = W2 b1 + b2: without a nonlinearity two layers are one.")
