"""Checks for the exercises of the Concepts chapter (episodes, confidence intervals,
multi-task learning as meta-learning).

Chapter: Concepts, Exercises 2, 3 and 5.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from companion.exercises._check import confirm, require, require_close

__all__ = [
    "check_ci_shrink_factor",
    "check_episodes_to_separate",
    "check_multitask_weights",
    "check_queries_per_class",
]


def check_queries_per_class(five_way: int, sixty_way: int, *, images_per_step: int = 120,
                            n_shot: int = 1) -> None:
    """Exercise 2: queries per class when an episode holds ``images_per_step`` images.

    Args:
        five_way: your number of queries per class for 5-way ``n_shot``-shot episodes.
        sixty_way: the same for 60-way episodes.
        images_per_step: images in one episode (support and query together).
        n_shot: support images per class.

    Raises:
        AssertionError: a wrong answer, with a hint.
    """
    for ways, answer in ((5, five_way), (60, sixty_way)):
        expected = images_per_step // ways - n_shot
        require(int(answer) == expected,
                f"{ways}-way: got {answer}. Each class gets images_per_step / ways images; "
                f"{n_shot} of them go to the support set.")
    confirm(f"{five_way} queries per class for 5-way, {sixty_way} for 60-way.")


def check_ci_shrink_factor(factor: float) -> None:
    """Exercise 3: by what factor the 95% half-width shrinks with 4 times as many episodes.

    Args:
        factor: new half-width divided by the old one.

    Raises:
        AssertionError: a wrong answer, with a hint.
    """
    require_close(factor, 0.5, name="shrink factor",
                  hint="The half-width is 1.96 s / sqrt(n): what does sqrt(4 n) do to it?")
    confirm("four times the episodes halve the interval: it shrinks like 1/sqrt(n).")


def check_episodes_to_separate(n_episodes: int, *, std: float, difference: float) -> None:
    """Exercise 3: the fewest episodes for which two 95% intervals, each of half-width
    ``1.96 std / sqrt(n)``, no longer overlap when the means differ by ``difference``.

    Answers up to 25% above the minimum are accepted (you may have rounded up generously).

    Args:
        n_episodes: your number of episodes per method.
        std: standard deviation of the per-episode accuracies (a fraction, e.g. 0.05).
        difference: the difference of the two means (a fraction, e.g. 0.002).

    Raises:
        ValueError: ``std`` or ``difference`` is not positive.
        AssertionError: a wrong answer, with a hint.
    """
    if not std > 0 or not difference > 0:
        raise ValueError(f"std and difference must be positive, got {std} and {difference}")
    needed = math.ceil((2 * 1.96 * std / difference) ** 2)
    require(n_episodes >= needed,
            f"{n_episodes} episodes are too few: the two half-widths add up to "
            f"{2 * 1.96 * std / math.sqrt(n_episodes):.4f} > {difference}. Solve "
            f"2 * 1.96 * std / sqrt(n) < difference for n.")
    require(n_episodes <= 1.25 * needed,
            f"{n_episodes} episodes suffice but are far more than needed; solve "
            f"2 * 1.96 * std / sqrt(n) < difference for n.")
    confirm(f"about {needed} episodes per method (std {std}, difference {difference}).")


def check_multitask_weights(weights: Sequence[float],
                            task_probabilities: Sequence[float]) -> None:
    """Exercise 5: the multi-task weights ``w_i`` that make the meta-objective of a base
    learner that ignores its support set equal to the multi-task objective.

    Args:
        weights: your weights, one per task.
        task_probabilities: ``p(T_i)`` of each task (positive).

    Raises:
        ValueError: the lengths differ or a probability is not positive.
        AssertionError: a wrong answer, with a hint.
    """
    if len(weights) != len(task_probabilities) or not task_probabilities:
        raise ValueError("weights and task_probabilities must have the same, non-zero length")
    if any(not p > 0 for p in task_probabilities):
        raise ValueError("task_probabilities must all be positive")
    ratios = [float(w) / float(p) for w, p in zip(weights, task_probabilities, strict=True)]
    require(all(math.isfinite(r) and r > 0 for r in ratios),
            "every weight must be a positive number.")
    require(max(ratios) - min(ratios) <= 1e-6 * max(ratios),
            "the weights are not proportional to the task probabilities. Write the expectation "
            "over tasks as a sum: E_T[L_T] = sum_i p(T_i) L_i.")
    confirm("w_i is proportional to p(T_i): the expectation over tasks is a weighted sum.")
