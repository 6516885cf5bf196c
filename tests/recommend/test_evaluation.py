"""Each test user once, the same episode for every method: user_episodes, user_scores."""

from __future__ import annotations

import pytest
import torch

from companion.recommend import (
    GlobalRecommender,
    RatingModel,
    summarise,
    user_episodes,
    user_scores,
)
from tests.data.test_movielens_tasks import tiny_movielens


def test_one_episode_per_user_independent_of_order_and_of_the_other_users():
    data = tiny_movielens()
    a = user_episodes(data, [0, 1, 3], k_shot=4, seed=2)
    b = user_episodes(data, [3, 0], k_shot=4, seed=2)
    assert [e.user for e in a] == [0, 1, 3] and [e.user for e in b] == [3, 0]
    assert torch.equal(a[0].support_items, b[1].support_items)
    assert torch.equal(a[2].query_items, b[0].query_items)
    for e in a:  # support and query partition the user's rated movies
        items, _ = data.ratings_of(e.user)
        both = torch.cat([e.support_items, e.query_items]).sort().values
        assert torch.equal(both, items.sort().values) and e.support_items.numel() == 4
    other = user_episodes(data, [0, 1], k_shot=4, seed=3)
    assert not all(torch.equal(x.support_items, y.support_items) for x, y in
                   zip(a[:2], other, strict=True))


def test_scores_are_the_per_user_metrics_and_their_mean():
    data = tiny_movielens()
    torch.manual_seed(0)
    learner = GlobalRecommender(RatingModel(embedding_dim=4, hidden=(8,)))
    episodes = user_episodes(data, [0, 1, 3, 4], k_shot=3)
    scores = user_scores(learner, episodes)
    assert set(scores) == {"mae", "rmse", "ndcg@3"} and scores["mae"].shape == (4,)
    by_hand = torch.stack([(learner.predict(e) - e.query_y).abs().mean() for e in episodes])
    torch.testing.assert_close(scores["mae"], by_hand.double())
    summary = summarise(scores)
    assert summary["mae"].mean == pytest.approx(by_hand.mean().item(), rel=1e-6)
    half = 1.959964 * by_hand.double().std().item() / 2  # sqrt(4 users)
    assert summary["mae"].ci95 == pytest.approx(half, rel=1e-4)


def test_bad_input_names_the_argument():
    data = tiny_movielens()  # user 2 rated 6 movies
    with pytest.raises(ValueError, match=r"k_shot=6 .*\[2\]"):
        user_episodes(data, [0, 2], k_shot=6)
    with pytest.raises(ValueError, match="users holds unknown user"):
        user_episodes(data, [0, 9], k_shot=2)
    with pytest.raises(ValueError, match="at least 2 users"):
        user_episodes(data, [0], k_shot=2)
    with pytest.raises(ValueError, match="seed"):
        user_episodes(data, [0, 1], k_shot=2, seed=-1)
    with pytest.raises(ValueError, match="evaluation_metrics"):
        user_scores(object(), user_episodes(data, [0, 1], k_shot=2))
    with pytest.raises(ValueError, match="finite"):
        summarise({"mae": torch.tensor([1.0, float("nan")])})
