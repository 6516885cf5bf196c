"""Users as tasks: user splits, support/query episodes, the sampler, bad input."""

from __future__ import annotations

import pytest
import torch

from companion.data.movielens import MovieLens100K
from companion.data.movielens_tasks import (
    K_SHOTS,
    RatingEpisodeBatch,
    UserTaskSampler,
    cold_start_samplers,
    eligible_users,
    split_users,
    user_episode,
)


def tiny_movielens(counts: tuple[int, ...] = (8, 12, 6, 10, 9)) -> MovieLens100K:
    """Users 0..4 rating ``counts[u]`` distinct movies of 15; rating = 1 + (u + item) % 5."""
    users, items = [], []
    for u, c in enumerate(counts):
        users += [u] * c
        items += [(3 * u + j) % 15 for j in range(c)]
    user, item = torch.tensor(users), torch.tensor(items)
    n = len(counts)
    g = torch.Generator().manual_seed(0)
    item_features = torch.cat([torch.randint(0, 9, (15, 1), generator=g),
                               torch.randint(0, 2, (15, 19), generator=g)], dim=1)
    user_features = torch.stack([torch.arange(n) % 2, torch.arange(n) % 7, torch.arange(n),
                                 torch.arange(n) % 11], dim=1)
    return MovieLens100K(
        user=user, item=item, rating=(1 + (user + item) % 5).float(),
        timestamp=torch.arange(len(users)), user_features=user_features,
        age=torch.full((n,), 30), zip_codes=("00000",) * n, item_features=item_features,
        release_year=torch.full((15,), 1995), titles=tuple(f"m{i}" for i in range(15)),
        genres=tuple(f"g{i}" for i in range(19)), occupations=tuple(f"o{i}" for i in range(21)))


def test_split_users_is_a_seeded_partition():
    parts = split_users(943, seed=0)
    assert [len(parts[k]) for k in ("train", "val", "test")] == [660, 94, 189]
    together = torch.cat(list(parts.values()))
    assert torch.equal(together.sort().values, torch.arange(943))  # disjoint and complete
    again = split_users(943, seed=0)
    assert all(torch.equal(parts[k], again[k]) for k in parts)
    assert not torch.equal(parts["test"], split_users(943, seed=1)["test"])


@pytest.mark.parametrize("kwargs, name", [({"fractions": (0.5, 0.5, 0.5)}, "fractions"),
                                         ({"seed": -1}, "seed")])
def test_split_users_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        split_users(10, **kwargs)


def test_episode_splits_the_users_ratings():
    data = tiny_movielens()
    ep = user_episode(data, 1, k_shot=5, generator=torch.Generator().manual_seed(0))
    assert ep.support_x.shape == (5, 24) and ep.query_x.shape == (7, 24)
    assert ep.support_y.dtype == torch.float32
    items = torch.cat([ep.support_items, ep.query_items])
    assert torch.equal(items.sort().values, data.ratings_of(1)[0])  # all rated, no overlap
    assert torch.equal(ep.query_y, (1 + (1 + ep.query_items) % 5).float())
    assert torch.equal(ep.support_x[:, :4], data.user_features[1].expand(5, 4))
    assert torch.equal(ep.support_x[:, 4:], data.item_features[ep.support_items])
    same = user_episode(data, 1, k_shot=5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(same.support_items, ep.support_items)


def test_episode_bad_input_names_the_argument():
    data, g = tiny_movielens(), torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="k_shot=6 leaves no query"):
        user_episode(data, 2, k_shot=6, generator=g)
    with pytest.raises(ValueError, match="user holds unknown user"):
        user_episode(data, 5, k_shot=2, generator=g)
    with pytest.raises(ValueError, match="k_shot"):
        user_episode(data, 0, k_shot=0, generator=g)


def test_sampler_draws_distinct_users_of_its_split():
    data = tiny_movielens()
    sampler = UserTaskSampler(data, [0, 1, 3], k_shot=5, seed=0, max_query=2)
    batch = sampler.sample_batch(3)
    assert isinstance(batch, RatingEpisodeBatch) and len(batch) == 3
    assert sorted(e.user for e in batch) == [0, 1, 3]
    assert all(e.query_y.shape == (2,) for e in batch)
    assert sampler.sample().user in (0, 1, 3)
    assert isinstance(sampler.generator, torch.Generator)
    with pytest.raises(ValueError, match="n=4"):
        sampler.sample_batch(4)


def test_sampler_refuses_users_with_too_few_ratings():
    data = tiny_movielens()
    with pytest.raises(ValueError, match=r"k_shot=6 .*eligible_users"):
        UserTaskSampler(data, [0, 2], k_shot=6, seed=0)
    assert eligible_users(data, [0, 1, 2, 3, 4], 8).tolist() == [1, 3, 4]
    with pytest.raises(ValueError, match="users holds unknown user"):
        UserTaskSampler(data, [7], k_shot=2, seed=0)
    with pytest.raises(ValueError, match="generator= or seed="):
        UserTaskSampler(data, [0], k_shot=2)


def test_batch_moves_to_a_device():
    data = tiny_movielens()
    batch = UserTaskSampler(data, [0, 1], k_shot=2, seed=0).sample_batch(2)
    moved = batch.to("meta")
    assert moved.device.type == "meta" and moved.episodes[1].query_y.device.type == "meta"


@pytest.fixture(scope="module")
def real(mirror) -> MovieLens100K:
    from companion.data.movielens import load_movielens

    if not (mirror / "movielens" / "ml-100k" / "SHA256SUMS").is_file():
        pytest.skip("the mirror has no movielens/ml-100k")
    return load_movielens(mirror=mirror, download=False, progress=False)


@pytest.mark.parametrize("k_shot", K_SHOTS)
def test_real_cold_start_samplers(real, k_shot):
    samplers = cold_start_samplers(real, k_shot=k_shot)
    users = [set(s.users.tolist()) for s in samplers.values()]
    assert not (users[0] & users[1] or users[0] & users[2] or users[1] & users[2])
    counts = real.counts_per_user()
    assert all(int(counts[u]) > k_shot for s in users for u in s)
    if k_shot < 20:  # every MovieLens 100K user rated at least 20 movies
        assert sum(len(s) for s in users) == 943
    else:
        assert sum(len(s) for s in users) == 943 - int((counts == 20).sum())
    episode = samplers["test"].sample()
    assert episode.support_x.shape == (k_shot, 24)
    assert episode.query_y.numel() == int(counts[episode.user]) - k_shot
