"""Checks for the exercises of the model-based chapter (the shifted label inputs, the size of
the in-context attention mask, the error of minimum-norm least squares, the meta-updates of
truncated back-propagation through time).

Chapter: Model-based meta-learning, Exercises 1 to 4.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from companion.exercises._check import confirm, require, require_close
from companion.meta.in_context import episode_attention_mask
from companion.meta.label_inputs import HIDDEN, label_inputs

__all__ = ["check_allowed_pairs", "check_least_squares_error", "check_meta_updates",
           "check_shifted_inputs"]


def check_shifted_inputs(answer: object) -> None:
    """Exercise 1: the label inputs ``[4, 3]`` of Santoro et al.'s shifted protocol for the
    3-way sequence with labels ``2, 0, 1`` and then one query (label hidden).

    Args:
        answer: a ``[4, 3]`` tensor (or nested list) of 0s and 1s.

    Raises:
        AssertionError: a wrong answer, with a hint.
    """
    got = torch.as_tensor(answer, dtype=torch.float32)
    require(tuple(got.shape) == (4, 3), f"expected shape (4, 3), got {tuple(got.shape)}.")
    expected = label_inputs(torch.tensor([2, 0, 1, HIDDEN]), 3, shift=True)
    concurrent = label_inputs(torch.tensor([2, 0, 1, HIDDEN]), 3, shift=False)
    require(not torch.equal(got, concurrent),
            "that is the concurrent (CS330) encoding: in the shifted one, step t shows the "
            "label of step t - 1.")
    require(torch.equal(got, expected),
            "step 0 shows zeros (nothing came before it); step t shows the one-hot label of "
            "step t - 1, so the query (step 3) shows the last support label.")
    confirm("the query step carries the last support label; its own label never enters.")


def check_allowed_pairs(count: int) -> None:
    """Exercise 2: how many (reader, read) token pairs the in-context mask allows in a 5-way
    5-shot episode with 15 queries per class.

    Args:
        count: your number of True entries of the mask.

    Raises:
        AssertionError: a wrong count, with a hint.
    """
    expected = int(episode_attention_mask(25, 75).sum())
    require_close(count, expected, name="allowed pairs", rel=0.0,
                  hint="Every token (support or query) reads all 25 support tokens; a query "
                       "also reads itself, and nothing else.")
    confirm(f"(25 + 75) x 25 + 75 = {expected}: the cost grows with the support set times "
            "the episode, and no query reads another.")


def check_least_squares_error(error: Callable[[int, int], float]) -> None:
    """Exercise 3: the expected squared error on a query of minimum-norm least squares with
    ``n`` noiseless examples in ``d`` dimensions (``w, x ~ N(0, I_d)``).

    Args:
        error: your function ``(d, n) -> expected error``.

    Raises:
        AssertionError: a wrong value, with a hint.
    """
    for d, n in ((5, 1), (5, 3), (5, 5), (5, 9), (20, 7), (1, 1)):
        require_close(error(d, n), max(d - n, 0), name=f"error(d={d}, n={n})",
                      hint="The fit recovers the part of w in the span of the n inputs and "
                           "sets the rest to 0; what is the expected squared length of the "
                           "rest, and what does a query x ~ N(0, I) do to it?")
    confirm("E[(x . (w - w_hat))^2] = E|P w|^2 = d - n for n < d, and 0 once n >= d.")


def check_meta_updates(updates: Callable[[int, int], int]) -> None:
    """Exercise 4: meta-updates in one ``LSTMOptimizer.training_step`` with ``unroll`` steps
    and truncations of ``truncation`` steps.

    Args:
        updates: your function ``(unroll, truncation) -> number of meta-updates``.

    Raises:
        AssertionError: a wrong number, with a hint.
    """
    for unroll, truncation in ((100, 20), (7, 3), (5, 10), (2000, 20)):
        require_close(updates(unroll, truncation), math.ceil(unroll / truncation),
                      name=f"updates(unroll={unroll}, truncation={truncation})", rel=0.0,
                      hint="One meta-update per truncation; the last truncation may be "
                           "shorter.")
    confirm("ceil(unroll / truncation) meta-updates, each back-propagating through at most "
            "`truncation` steps.")
