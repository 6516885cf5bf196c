"""Baseline and Baseline++: the cosine classifier, pre-training networks, episode learners."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion import EpisodeSampler, evaluate
from companion.data import Episode
from companion.transfer import (
    CosineClassifier,
    SupportSetFineTuner,
    baseline,
    baseline_classifier,
    chen_scale,
    cosine_scores,
)
from tests.transfer.test_transfer import _blobs

pytestmark = pytest.mark.usefixtures("torch_seed_0")  # module initialisation


def test_cosine_scores_are_scale_times_cosine():
    z = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
    w = torch.tensor([[1.0, 0.0], [0.0, 5.0], [-1.0, -1.0]])
    expected = torch.tensor([[0.6, 0.8, -7 / (5 * 2 ** 0.5)], [0.0, 1.0, -1 / 2 ** 0.5]])
    torch.testing.assert_close(cosine_scores(z, w, 4.0), 4.0 * expected)


def test_cosine_classifier_scale_bounds_the_scores_and_follows_chen():
    head = CosineClassifier(6, 4, scale=7.0)
    z = torch.randn(10, 6) * 100
    scores = head(z)
    assert scores.abs().max() <= 7.0 + 1e-5
    reference = torch.nn.functional.cosine_similarity(z[:, None, :], head.weight[None], dim=2)
    torch.testing.assert_close(scores, 7.0 * reference)
    assert CosineClassifier(6, 4).scale == 2.0 == chen_scale(200)
    assert CosineClassifier(6, 300).scale == 10.0 == chen_scale(201)
    torch.testing.assert_close(head(2 * torch.ones(1, 6)), head(torch.ones(1, 6)))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"scale": 0.0}, "scale"), ({"in_features": 0}, "in_features"),
    ({"n_classes": 0}, "n_classes")])
def test_cosine_classifier_bad_arguments(kwargs, message):
    args = {"in_features": 4, "n_classes": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        CosineClassifier(**args)
    with pytest.raises(ValueError, match="agree on d"):
        cosine_scores(torch.randn(2, 3), torch.randn(4, 5), 1.0)


def test_pretraining_networks():
    plain = baseline_classifier(nn.Flatten(), 64, 10)
    plus = baseline_classifier(nn.Flatten(), 64, 10, variant="baseline++", scale=5.0)
    assert isinstance(plain[1], nn.Linear) and isinstance(plus[1], CosineClassifier)
    assert plus(torch.randn(3, 1, 8, 8)).shape == (3, 10) and plus[1].scale == 5.0
    with pytest.raises(ValueError, match="variant"):
        baseline_classifier(nn.Flatten(), 64, 10, variant="baseline+++")


@pytest.mark.parametrize("variant", ["baseline", "baseline++"])
def test_episode_learners_on_a_good_frozen_embedding(variant):
    ds = _blobs(n_classes=6)
    learner = baseline(nn.Flatten(), 64, variant=variant, steps=50, lr=0.1, scale=10.0)
    assert isinstance(learner, SupportSetFineTuner)
    sampler = EpisodeSampler(ds, n_way=3, n_shot=2, n_query=5, seed=0)
    assert evaluate(learner, sampler, n_episodes=5, progress=False).mean == 1.0


def test_cosine_head_starts_at_the_class_means_and_scores_by_scaled_cosine():
    """A learning rate so small that the head stays where it starts: at the support class
    means, i.e. a scaled-cosine nearest-centroid classifier."""
    support_x = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    ep = Episode(support_x, torch.tensor([0, 0, 1, 1]), torch.tensor([[1.0, 1.0], [2.0, 0.5]]),
                 torch.tensor([0, 0]))
    tuner = SupportSetFineTuner(nn.Identity(), 2, steps=1, lr=1e-12, head="cosine", scale=3.0)
    means = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    torch.testing.assert_close(tuner.predict(ep), cosine_scores(ep.query_x, means, 3.0))


def test_fine_tuner_head_argument():
    with pytest.raises(ValueError, match="head"):
        SupportSetFineTuner(nn.Flatten(), 4, head="mlp")
    with pytest.raises(ValueError, match="scale"):
        SupportSetFineTuner(nn.Flatten(), 4, head="cosine", scale=-1.0)
