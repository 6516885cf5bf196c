"""Users as tasks: cold-start recommendation episodes from MovieLens 100K.

A *task* is one user. Users (not ratings) are split into meta-train / validation / test users by
a fixed seed (:func:`split_users`); an episode of a user (:func:`user_episode`) puts ``k_shot``
of the user's rated movies, drawn by a seeded generator, into the support set and every other
rated movie into the query set, as in MeLU's cold-start protocol.

Batch format: users rated between 20 and 737 movies, so query sets differ in length. A batch
(:class:`RatingEpisodeBatch`) is therefore a **tuple of episodes**, not a padded tensor: no mask
to forget, and a learner loops over the users of the batch (a handful per step).

Chapter: Applications (cold-start recommendation). References: :cite:t:`lee2019melu`,
:cite:t:`harper2015movielens`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from companion._checks import check_positive_int, check_seed, generator_from
from companion.data.movielens import MovieLens100K

__all__ = ["K_SHOTS", "RatingEpisode", "RatingEpisodeBatch", "UserTaskSampler",
           "cold_start_samplers", "eligible_users", "split_users", "user_episode"]

K_SHOTS: tuple[int, ...] = (5, 10, 20)
SPLITS = ("train", "val", "test")


@dataclass(frozen=True, eq=False)
class RatingEpisode:
    """One user's task: rated movies to adapt on (support) and to predict (query).

    Attributes:
        user: the user's 0-based index.
        support_items: ``[k]`` movie indices; ``support_x``: ``[k, 24]`` int64 features
            (:meth:`MovieLens100K.features`); ``support_y``: ``[k]`` float32 ratings.
        query_items, query_x, query_y: the same for the ``n_query`` other rated movies.
    """

    user: int
    support_items: Tensor
    support_x: Tensor
    support_y: Tensor
    query_items: Tensor
    query_x: Tensor
    query_y: Tensor

    @property
    def device(self) -> torch.device:
        return self.support_x.device

    def to(self, device: torch.device | str) -> RatingEpisode:
        """The episode with every tensor on ``device``."""
        return RatingEpisode(self.user, *(t.to(device) for t in (
            self.support_items, self.support_x, self.support_y, self.query_items, self.query_x,
            self.query_y)))


@dataclass(frozen=True, eq=False)
class RatingEpisodeBatch:
    """Several users' episodes (a tuple: the users' query sets differ in length)."""

    episodes: tuple[RatingEpisode, ...]

    def __post_init__(self) -> None:
        if not self.episodes:
            raise ValueError("episodes must not be empty")

    def __len__(self) -> int:
        return len(self.episodes)

    def __iter__(self) -> Iterator[RatingEpisode]:
        return iter(self.episodes)

    @property
    def device(self) -> torch.device:
        return self.episodes[0].device

    def to(self, device: torch.device | str) -> RatingEpisodeBatch:
        return RatingEpisodeBatch(tuple(e.to(device) for e in self.episodes))


def split_users(n_users: int, *, fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
                seed: int = 0) -> dict[str, Tensor]:
    """Split user indices ``0..n_users-1`` into disjoint ``"train"``, ``"val"``, ``"test"`` sets.

    Args:
        n_users: number of users (943 for MovieLens 100K).
        fractions: shares of the three sets (non-negative, summing to 1).
        seed: seed of the permutation (the same seed gives the same split on every machine).

    Returns:
        ``{split: [n_split] int64 sorted user indices}``.
    """
    check_positive_int("n_users", n_users)
    check_seed(seed)
    if (len(fractions) != 3 or any(not 0 <= f <= 1 for f in fractions)
            or abs(sum(fractions) - 1) > 1e-9):
        raise ValueError(f"fractions must be three shares in [0, 1] summing to 1, got "
                         f"{fractions!r}")
    order = torch.randperm(n_users, generator=torch.Generator().manual_seed(seed))  # [n_users]
    n_train = round(fractions[0] * n_users)
    n_val = round(fractions[1] * n_users)
    parts = (order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:])
    return {name: part.sort().values for name, part in zip(SPLITS, parts, strict=True)}


def eligible_users(data: MovieLens100K, users: Tensor | Sequence[int], k_shot: int) -> Tensor:
    """The users of ``users`` with at least ``k_shot + 1`` ratings (a non-empty query set)."""
    check_positive_int("k_shot", k_shot)
    u = data.check_users(users)
    return u[data.counts_per_user()[u] > k_shot]


def user_episode(data: MovieLens100K, user: int, *, k_shot: int,
                 generator: torch.Generator, max_query: int | None = None) -> RatingEpisode:
    """An episode of ``user``: ``k_shot`` random rated movies as support, the rest as query.

    Args:
        data: the loaded data set.
        user: 0-based user index.
        k_shot: support size (> 0 and smaller than the user's number of ratings).
        generator: CPU generator drawing the support movies.
        max_query: keep at most this many query movies (a random subset); None keeps all.

    Raises:
        ValueError: unknown ``user``, or ``k_shot`` not smaller than the user's ratings.
    """
    check_positive_int("k_shot", k_shot)
    if max_query is not None:
        check_positive_int("max_query", max_query)
    if isinstance(user, bool) or not isinstance(user, int):
        raise ValueError(f"user must be an int user index, got {user!r}")
    items, ratings = data.ratings_of(user)  # [n], [n]
    n = items.shape[0]
    if k_shot >= n:
        raise ValueError(f"k_shot={k_shot} leaves no query movie: user {user} rated {n} movies "
                         f"(k_shot must be at most {n - 1})")
    order = torch.randperm(n, generator=generator)  # [n]
    support, query = order[:k_shot], order[k_shot:]
    if max_query is not None:
        query = query[:max_query]
    return RatingEpisode(
        user=user,
        support_items=items[support], support_x=data.features(user, items[support]),
        support_y=ratings[support],
        query_items=items[query], query_x=data.features(user, items[query]),
        query_y=ratings[query],
    )


class UserTaskSampler:
    """Draws user episodes from a set of users (one split), for ``fit`` and ``evaluate``.

    Args:
        data: the loaded data set.
        users: the users to draw from (e.g. ``split_users(943)["train"]``); each must have
            more than ``k_shot`` ratings (filter with :func:`eligible_users`).
        k_shot: support movies per user (the book uses 5, 10 and 20).
        generator / seed: the only source of randomness (exactly one of the two).
        max_query: cap on query movies per episode (None: all the other rated movies).

    ``sample()`` returns one :class:`RatingEpisode` (a uniformly drawn user);
    ``sample_batch(n)`` a :class:`RatingEpisodeBatch` of ``n`` users drawn without replacement.
    """

    def __init__(self, data: MovieLens100K, users: Tensor | Sequence[int], *, k_shot: int,
                 generator: torch.Generator | None = None, seed: int | None = None,
                 max_query: int | None = None) -> None:
        check_positive_int("k_shot", k_shot)
        if max_query is not None:
            check_positive_int("max_query", max_query)
        self.users = data.check_users(users)
        if self.users.numel() == 0:
            raise ValueError("users must not be empty")
        counts = data.counts_per_user()[self.users]
        short = self.users[counts <= k_shot]
        if short.numel():
            raise ValueError(f"k_shot={k_shot} is not smaller than the number of ratings of "
                             f"users {short[:5].tolist()} (min {int(counts.min())}); choose a "
                             "smaller k_shot or filter the users with eligible_users()")
        self.data = data
        self.k_shot = k_shot
        self.max_query = max_query
        self.generator = generator_from(generator, seed)

    def episode(self, user: int) -> RatingEpisode:
        """An episode of a given user (drawn with this sampler's generator)."""
        return user_episode(self.data, user, k_shot=self.k_shot, generator=self.generator,
                            max_query=self.max_query)

    def sample(self) -> RatingEpisode:
        """One episode of a uniformly drawn user."""
        pick = int(torch.randint(self.users.numel(), (1,), generator=self.generator))
        return self.episode(int(self.users[pick]))

    def sample_batch(self, n: int) -> RatingEpisodeBatch:
        """Episodes of ``n`` distinct users (``n`` at most the number of users)."""
        check_positive_int("n", n)
        if n > self.users.numel():
            raise ValueError(f"n={n} is larger than the {self.users.numel()} users to draw from")
        picks = torch.randperm(self.users.numel(), generator=self.generator)[:n]
        return RatingEpisodeBatch(tuple(self.episode(int(self.users[p])) for p in picks))


def cold_start_samplers(data: MovieLens100K, *, k_shot: int, split_seed: int = 0, seed: int = 0,
                        max_query: int | None = None) -> dict[str, UserTaskSampler]:
    """One sampler per user split (``"train"``, ``"val"``, ``"test"``) for a support size.

    Users are split by :func:`split_users` with ``split_seed`` (the same split for every
    ``k_shot``); users with at most ``k_shot`` ratings are left out of every split (for
    ``k_shot=20`` the users who rated exactly 20 movies). Each sampler gets its own generator,
    seeded ``seed``, ``seed + 1``, ``seed + 2``.
    """
    check_seed(seed)
    splits = split_users(data.n_users, seed=split_seed)
    return {name: UserTaskSampler(data, eligible_users(data, users, k_shot), k_shot=k_shot,
                                  seed=seed + i, max_query=max_query)
            for i, (name, users) in enumerate(splits.items())}
