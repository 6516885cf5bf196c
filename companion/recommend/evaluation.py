"""Score a recommender on every test user exactly once, with the same episode for each method.

:func:`companion.evaluate_all` draws users with replacement, which suits few-shot classes but
not a fixed set of test users: a cold-start table should average over each test user once,
and every method should see the same support movies of a user, so that the per-user
differences between two methods can be paired. :func:`user_scores` seeds each user's episode
with ``(seed, user)`` and returns one score per user; :func:`summarise` turns them into
mean +- 95% CI over users.

Chapter: Applications (cold-start recommendation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from companion._checks import check_positive_int, check_seed
from companion.data.movielens import MovieLens100K
from companion.data.movielens_tasks import RatingEpisode, user_episode
from companion.metrics import MeanCI, mean_ci95

__all__ = ["summarise", "user_episodes", "user_scores"]

_USER_STRIDE = 1_000_003  # a prime larger than any user index: (seed, user) -> one seed


def user_episodes(data: MovieLens100K, users: Tensor | Sequence[int], *, k_shot: int,
                  seed: int = 0, max_query: int | None = None) -> list[RatingEpisode]:
    """One episode per user (in the given order); user ``u``'s is drawn with seed
    ``seed * 1_000_003 + u``, so it does not depend on the other users or on the order.

    Raises:
        ValueError: an unknown user, or a user with at most ``k_shot`` ratings (it names them).
    """
    check_positive_int("k_shot", k_shot)
    check_seed(seed)
    u = data.check_users(users)
    if u.numel() < 2:
        raise ValueError(f"users must hold at least 2 users (for a confidence interval), got "
                         f"{u.numel()}")
    counts = data.counts_per_user()[u]
    short = u[counts <= k_shot]
    if short.numel():
        raise ValueError(f"k_shot={k_shot} is not smaller than the number of ratings of users "
                         f"{short[:5].tolist()}; filter them with eligible_users()")
    return [user_episode(data, int(user), k_shot=k_shot, max_query=max_query,
                         generator=torch.Generator().manual_seed(seed * _USER_STRIDE + int(user)))
            for user in u]


def user_scores(learner: Any, episodes: Sequence[RatingEpisode]) -> dict[str, Tensor]:
    """``{metric: [n_users]}`` from ``learner.evaluation_metrics(episode)`` of each episode."""
    if not callable(getattr(learner, "evaluation_metrics", None)):
        raise ValueError(f"learner must have evaluation_metrics(episode) (GlobalRecommender, "
                         f"FineTuneRecommender, MeLU), got {type(learner).__name__}")
    if len(episodes) == 0:
        raise ValueError("episodes must not be empty")
    rows = [learner.evaluation_metrics(e) for e in episodes]
    return {name: torch.stack([torch.as_tensor(r[name], dtype=torch.float64) for r in rows])
            for name in rows[0]}  # each [n_users]


def summarise(scores: Mapping[str, Tensor]) -> dict[str, MeanCI]:
    """Mean +- 95% CI over users of each metric (NaN or infinite scores raise)."""
    return {name: mean_ci95(values, percent=False) for name, values in scores.items()}
