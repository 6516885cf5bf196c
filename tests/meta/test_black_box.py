"""The black-box learners (recurrent and attention-based): no peeking at query labels or at
other queries, label remapping, sizes and bad input, and the episode interface."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion.data import Episode, EpisodeBatch, EpisodeSampler
from companion.meta import (
    InContextLearner,
    MemoryAugmentedLearner,
    RecurrentLearner,
    SequenceLearner,
)
from companion.models import Conv4
from tests.conftest import make_dataset

N_WAY, N_SHOT, N_QUERY = 3, 2, 4


def _learners() -> dict[str, SequenceLearner]:
    """Float64 learners on 4x4 images (a linear embedding keeps the tests fast)."""
    def encoder() -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(16, 8))

    gen = torch.random.fork_rng()  # parameters from a fixed seed, global RNG restored after
    with gen:
        torch.manual_seed(0)
        learners: dict[str, SequenceLearner] = {
            "lstm": RecurrentLearner(encoder(), embedding_dim=8, max_ways=5, max_support=12,
                                     hidden_size=16),
            "lstm-shift": RecurrentLearner(encoder(), embedding_dim=8, max_ways=5,
                                           max_support=12, hidden_size=16, num_layers=2,
                                           shift=True),
            "transformer": InContextLearner(encoder(), embedding_dim=8, max_ways=5,
                                            max_support=12, d_model=16, n_heads=2),
            "mann": MemoryAugmentedLearner(encoder(), embedding_dim=8, max_ways=5,
                                           max_support=12, hidden_size=16, n_slots=8,
                                           word_size=6, shift=True),
        }
    return {k: v.double().eval() for k, v in learners.items()}


LEARNERS = _learners()


def _episode(seed: int = 0) -> Episode:
    sampler = EpisodeSampler(make_dataset([8] * 6), n_way=N_WAY, n_shot=N_SHOT,
                             n_query=N_QUERY, seed=seed, shuffle=True)
    return sampler.sample().to(dtype=torch.float64)


def _with(episode: Episode, **fields: torch.Tensor) -> Episode:
    values = {f: getattr(episode, f) for f in ("support_x", "support_y", "query_x", "query_y")}
    return Episode(**{**values, **fields})


@pytest.mark.parametrize("name", LEARNERS)
def test_predict_on_a_sampled_episode(name):
    episode = _episode()
    scores = LEARNERS[name].predict(episode)
    assert scores.shape == (N_WAY * N_QUERY, N_WAY) and scores.dtype == torch.float64
    assert torch.isfinite(scores).all()
    accuracy = (scores.argmax(1) == episode.query_y).sum().item() / len(scores)
    assert LEARNERS[name].evaluation_metrics(episode)["accuracy"].item() == pytest.approx(accuracy)


@pytest.mark.parametrize("name", LEARNERS)
def test_hidden_query_labels_do_not_change_any_prediction(name):
    episode = _episode()
    scores = LEARNERS[name].predict(episode)
    permuted = _with(episode, query_y=episode.query_y.flip(0))
    constant = _with(episode, query_y=torch.zeros_like(episode.query_y))
    assert torch.equal(LEARNERS[name].predict(permuted), scores)
    assert torch.equal(LEARNERS[name].predict(constant), scores)


@pytest.mark.parametrize("name", LEARNERS)
@pytest.mark.parametrize("changed", [0, 5, N_WAY * N_QUERY - 1])
def test_changing_one_query_changes_no_other_query_prediction(name, changed):
    """Earlier and later queries alike: each query is predicted from the support set alone."""
    episode = _episode()
    scores = LEARNERS[name].predict(episode)
    query_x = episode.query_x.clone()
    query_x[changed] = torch.rand(query_x[changed].shape, dtype=torch.float64,
                                  generator=torch.Generator().manual_seed(1))
    new = LEARNERS[name].predict(_with(episode, query_x=query_x))
    others = torch.arange(len(scores)) != changed
    assert torch.equal(new[others], scores[others])  # exactly: attention weight 0, own row
    assert not torch.equal(new[changed], scores[changed])  # the changed query itself moves


@pytest.mark.parametrize("name", LEARNERS)
def test_permuting_the_queries_permutes_the_predictions(name):
    episode = _episode()
    scores = LEARNERS[name].predict(episode)
    perm = torch.randperm(len(scores), generator=torch.Generator().manual_seed(2))
    new = LEARNERS[name].predict(_with(episode, query_x=episode.query_x[perm],
                                       query_y=episode.query_y[perm]))
    torch.testing.assert_close(new, scores[perm], rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", LEARNERS)
def test_support_labels_are_read(name):
    """The predictions depend on which support item carries which label (no constant model)."""
    episode = _episode()
    relabelled = _with(episode, support_y=(episode.support_y + 1) % N_WAY)
    assert not torch.allclose(LEARNERS[name].predict(relabelled), LEARNERS[name].predict(episode))


@pytest.mark.parametrize("name", LEARNERS)
def test_support_labels_are_remapped_to_the_episode(name):
    """Any integer labels work; columns are the sorted distinct labels (never the order seen)."""
    episode = _episode()
    original = torch.tensor([7, 3, 9])[episode.support_y]  # 0 -> 7, 1 -> 3, 2 -> 9
    learner = LEARNERS[name]
    with torch.no_grad():
        scores = learner(episode.support_x, original, episode.query_x)
        remapped = torch.tensor([1, 0, 2])[episode.support_y]  # sorted: 3 -> 0, 7 -> 1, 9 -> 2
        expected = learner(episode.support_x, remapped, episode.query_x)
    assert torch.equal(scores, expected)


def test_the_transformer_reads_the_support_set_as_a_set():
    episode = _episode()
    perm = torch.randperm(N_WAY * N_SHOT, generator=torch.Generator().manual_seed(3))
    shuffled = _with(episode, support_x=episode.support_x[perm], support_y=episode.support_y[perm])
    learner = LEARNERS["transformer"]
    torch.testing.assert_close(learner.predict(shuffled), learner.predict(episode),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["lstm", "mann"])
def test_the_recurrent_learners_read_the_support_set_in_order(name):
    """An LSTM is causal: the order matters (a later support item changes the state)."""
    episode = _episode()
    perm = torch.arange(N_WAY * N_SHOT).flip(0)
    shuffled = _with(episode, support_x=episode.support_x[perm], support_y=episode.support_y[perm])
    learner = LEARNERS[name]
    assert not torch.allclose(learner.predict(shuffled), learner.predict(episode))


@pytest.mark.parametrize("name", LEARNERS)
def test_meta_loss_matches_per_episode_predictions_and_reaches_every_parameter(name):
    learner = LEARNERS[name]
    episodes = [_episode(seed) for seed in range(3)]
    batch = EpisodeBatch.stack(episodes)
    learner.zero_grad()
    loss, metrics = learner.meta_loss(batch)
    loss.backward()
    scores = torch.cat([learner.predict(ep) for ep in episodes])
    labels = torch.cat([ep.query_y for ep in episodes])
    expected = nn.functional.cross_entropy(scores, labels)
    torch.testing.assert_close(loss.detach(), expected, rtol=1e-12, atol=0)
    assert metrics["accuracy"].item() == pytest.approx((scores.argmax(1) == labels).sum().item()
                                                       / len(labels))
    assert [n for n, p in learner.named_parameters() if p.grad is None] == []
    learner.zero_grad()


@pytest.mark.parametrize("name", LEARNERS)
def test_bad_input_raises_a_value_error_naming_the_argument(name):
    learner = LEARNERS[name]
    episode = _episode()
    sx, sy, qx = episode.support_x, episode.support_y, episode.query_x
    with pytest.raises(ValueError, match="support_y"):  # a query marker in the support stream
        learner(sx, torch.cat([sy[:-1], torch.tensor([-1])]), qx)
    with pytest.raises(ValueError, match="n_way=6 exceeds the model's max_ways=5"):
        learner(sx, torch.arange(len(sx)), qx)  # 6 support items, 6 classes
    many = torch.cat([sx, sx, sx])  # 18 support items, max_support is 12
    with pytest.raises(ValueError, match=r"n_support .* exceeds .* max_support=12"):
        learner(many, torch.cat([sy, sy, sy]), qx)
    nan_sx, inf_qx = sx.clone(), qx.clone()
    nan_sx[1, 0, 2, 2], inf_qx[0, 0, 3, 1] = float("nan"), float("inf")
    with pytest.raises(ValueError, match="support_x contains NaN"):
        learner(nan_sx, sy, qx)
    with pytest.raises(ValueError, match="query_x contains NaN or inf"):
        learner(sx, sy, inf_qx)
    with pytest.raises(ValueError, match="EpisodeBatch"):
        learner.meta_loss(episode)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="task='classification'"):
        learner(sx, sy.double()[:, None], qx)


def test_a_conv4_encoder_on_omniglot_sized_images():
    sampler = EpisodeSampler(make_dataset([8] * 6, image_size=28), n_way=N_WAY, n_shot=1,
                             n_query=2, seed=0, shuffle=True)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        learners = [RecurrentLearner(Conv4(hidden_channels=4, norm="none"), embedding_dim=4,
                                     max_ways=5, max_support=10),
                    InContextLearner(Conv4(hidden_channels=4, norm="none"), embedding_dim=4,
                                     max_ways=5, max_support=10, d_model=8, n_heads=2)]
    episode = sampler.sample()
    for learner in learners:
        assert learner.predict(episode).shape == (N_WAY * 2, N_WAY)
        loss, _ = learner.meta_loss(sampler.sample_batch(2))
        assert loss.ndim == 0 and torch.isfinite(loss)


def _cluster_batch(n_tasks: int, generator: torch.Generator, n_way: int = 3,
                   n_query: int = 5, dim: int = 8) -> EpisodeBatch:
    """Episodes whose classes are fresh random points in R^dim (items: point + 0.1 noise), so
    only the support labels can tell which class a query belongs to."""
    means = torch.randn(n_tasks, n_way, dim, generator=generator)
    support_y = torch.randperm(n_way, generator=generator)  # 1 shot, random order
    query_y = torch.arange(n_way).repeat(n_query)
    support_x = means[:, support_y] + 0.1 * torch.randn(n_tasks, n_way, dim, generator=generator)
    query_x = means[:, query_y] + 0.1 * torch.randn(n_tasks, len(query_y), dim,
                                                    generator=generator)
    return EpisodeBatch(support_x, support_y.expand(n_tasks, -1).clone(), query_x,
                        query_y.expand(n_tasks, -1).clone())


@pytest.mark.slow
@pytest.mark.parametrize(("name", "steps", "minimum"), [("transformer", 100, 0.9),
                                                         ("lstm", 250, 0.5)])
def test_the_learners_learn_to_read_support_labels(name, steps, minimum):
    """3-way 1-shot episodes of random clusters: chance is 1/3; reading the labels solves them
    (measured on the 200 test episodes: transformer 0.98 after 100 steps, LSTM 0.86
    after 250)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        learner: SequenceLearner = (
            InContextLearner(nn.Identity(), embedding_dim=8, max_ways=3, max_support=9,
                             d_model=32, n_heads=2) if name == "transformer"
            else RecurrentLearner(nn.Identity(), embedding_dim=8, max_ways=3, max_support=9,
                                  hidden_size=64))
    g = torch.Generator().manual_seed(0)
    optimizer = torch.optim.Adam(learner.parameters(), lr=3e-3)
    for _ in range(steps):
        loss, _ = learner.meta_loss(_cluster_batch(32, g))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        _, metrics = learner.meta_loss(_cluster_batch(200, torch.Generator().manual_seed(1)))
    assert metrics["accuracy"] > minimum, metrics
