"""The black-box experiment family: its configuration checks, its builder, and the test
episodes it shares with the other methods (only the support order is permuted)."""

from __future__ import annotations

import pytest
import torch

from companion.data import EpisodeSampler
from companion.experiments import CONFIGS, build_learner
from companion.experiments.methods.blackbox import BlackBoxExperiment
from companion.experiments.sources import ShuffledSupport, training_tasks
from companion.meta import InContextLearner, MemoryAugmentedLearner, RecurrentLearner
from tests.conftest import make_dataset


def _rows(x: torch.Tensor) -> list[int]:
    """The dataset rows of a batch of make_dataset images (pixels encode the row)."""
    return (x[:, 0, 0, 0] * 255 + x[:, 0, 0, 1] * 255 * 256).round().long().tolist()


def test_shuffled_support_keeps_the_episodes_and_permutes_the_support():
    data = make_dataset([6] * 8)
    plain = EpisodeSampler(data, n_way=4, n_shot=3, n_query=2, seed=5)
    shuffled = ShuffledSupport(EpisodeSampler(data, n_way=4, n_shot=3, n_query=2, seed=5),
                               seed=1)
    moved = 0
    for _ in range(20):
        a, b = plain.sample(), shuffled.sample()
        pairs_a = sorted(zip(_rows(a.support_x), a.support_y.tolist(), strict=True))
        pairs_b = sorted(zip(_rows(b.support_x), b.support_y.tolist(), strict=True))
        assert pairs_a == pairs_b  # the same images with the same labels
        assert torch.equal(a.query_x, b.query_x) and torch.equal(a.query_y, b.query_y)
        moved += _rows(a.support_x) != _rows(b.support_x)
    assert moved >= 18  # 12! orders: almost every support set is reordered
    again = ShuffledSupport(EpisodeSampler(data, n_way=4, n_shot=3, n_query=2, seed=5), seed=1)
    first = again.sample()
    replay = ShuffledSupport(EpisodeSampler(data, n_way=4, n_shot=3, n_query=2, seed=5), seed=1)
    assert torch.equal(first.support_x, replay.sample().support_x)  # seeded
    with pytest.raises(ValueError, match="sample"):
        ShuffledSupport(object(), seed=0)


def test_registered_runs_and_their_learners():
    for method, kind in (("lstm", RecurrentLearner), ("mann", MemoryAugmentedLearner),
                         ("transformer", InContextLearner)):
        cfg = CONFIGS[f"{method}-omniglot-5w1s"]
        assert isinstance(cfg, BlackBoxExperiment) and cfg.shuffle
        assert (cfg.n_way, cfg.n_shot, cfg.test_n_query, cfg.test_episodes) == (5, 1, 15, 600)
        learner = build_learner(cfg, 0)
        assert isinstance(learner, kind) and learner.max_support == 5 * cfg.max_shot
    lstm = BlackBoxExperiment(name="x", method="lstm", n_way=3, test_n_way=3)
    assert isinstance(build_learner(lstm, 0), RecurrentLearner)


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="max_shot"):
        BlackBoxExperiment(name="x", method="lstm", shot_sweep=(2, 7))
    with pytest.raises(ValueError, match="test_n_way"):
        BlackBoxExperiment(name="x", method="lstm", n_way=5, test_n_way=20)
    with pytest.raises(ValueError, match="shuffle"):
        BlackBoxExperiment(name="x", method="lstm", shuffle=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="method"):
        BlackBoxExperiment(name="x", method="maml")  # type: ignore[arg-type]


def test_training_tasks_shuffle_for_the_family_only():
    data = {"train": make_dataset([6] * 8), "val": make_dataset([20] * 6)}
    cfg = BlackBoxExperiment(name="x", method="lstm", n_way=4, test_n_way=4, n_query=2,
                             test_n_query=2, val_every=0)
    tasks, validate = training_tasks(cfg, data, torch.nn.Identity(), 0)
    assert tasks.shuffle and validate is None
    plain = CONFIGS["protonet-omniglot-1shot"]
    tasks, _ = training_tasks(plain, {"train": make_dataset([30] * 25), "val": data["val"]},
                              torch.nn.Identity(), 0)
    assert not tasks.shuffle
