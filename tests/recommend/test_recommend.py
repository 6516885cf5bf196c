"""Cold-start recommenders: shapes, MeLU's local update, training lowers the loss, metrics."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import companion
from companion.data.movielens_tasks import RatingEpisodeBatch, UserTaskSampler
from companion.recommend import (
    FineTuneRecommender,
    GlobalRecommender,
    MeLU,
    RatingModel,
    decision_parameter_names,
    rating_metrics,
)
from tests.data.test_movielens_tasks import tiny_movielens


@pytest.fixture
def sampler() -> UserTaskSampler:
    return UserTaskSampler(tiny_movielens(), [0, 1, 3, 4], k_shot=4, seed=0)


def _model(seed: int = 0) -> RatingModel:
    torch.manual_seed(seed)  # the test's own model init; restored by the fixture below
    return RatingModel(embedding_dim=4, hidden=(8,))


def test_model_shapes_and_parts(sampler):
    model = _model()
    ep = sampler.sample()
    assert model(ep.query_x).shape == ep.query_y.shape
    names = decision_parameter_names(model)
    assert names and all(n.startswith("decision.") for n in names)
    assert any(n.startswith("embedding.") for n, _ in model.named_parameters())


@pytest.mark.parametrize("x, message", [
    (torch.zeros(3, 24), "integer features"),
    (torch.zeros(3, 23, dtype=torch.long), r"\[n, 24\]"),
    (torch.full((3, 24), 0, dtype=torch.long).index_fill_(1, torch.tensor([0]), 2),
     "out of range"),
    (torch.full((3, 24), 0, dtype=torch.long).index_fill_(1, torch.tensor([10]), 3),
     "genre flag"),
])
def test_model_bad_input(x, message):
    with pytest.raises(ValueError, match=message):
        _model()(x)


def test_melu_local_update_touches_only_the_decision_layers(sampler):
    melu = MeLU(_model(), inner_lr=0.1)
    params = melu.params()
    fast = melu.adapt(sampler.sample(), steps=3)
    decision = set(decision_parameter_names(melu.model))
    for name, value in fast.items():
        if name in decision:
            assert not torch.equal(value, params[name]), name
        else:
            assert value is params[name], name  # the embeddings are the global ones


def test_melu_global_update_reaches_the_embeddings_through_the_local_update(sampler):
    melu = MeLU(_model(), inner_lr=0.1)
    loss, metrics = melu.meta_loss(sampler.sample_batch(2))
    loss.backward()
    grads = {n: p.grad for n, p in melu.named_parameters()}
    assert all(g is not None and g.abs().sum() > 0 for n, g in grads.items()
               if n.startswith("model.embedding.tables") or n.startswith("model.decision"))
    assert torch.equal(metrics["query_mse"], loss.detach())


def test_second_order_differs_from_first_order(sampler):
    batch = sampler.sample_batch(2)
    grads = []
    for first_order in (False, True):
        melu = MeLU(_model(), inner_lr=0.5, first_order=first_order)
        melu.meta_loss(batch)[0].backward()
        grads.append(melu.model.decision[0].weight.grad.clone())
    assert not torch.allclose(grads[0], grads[1])


def _mean_query_loss(learner: MeLU, batch: RatingEpisodeBatch) -> float:
    return learner.meta_loss(batch)[0].item()


@pytest.mark.slow  # a few seconds of training on a loaded 2-core machine
def test_a_short_melu_training_lowers_the_query_loss(sampler):
    melu = MeLU(_model(), inner_lr=0.05)
    fixed = UserTaskSampler(tiny_movielens(), [0, 1, 3, 4], k_shot=4, seed=1).sample_batch(4)
    before = _mean_query_loss(melu, fixed)
    companion.fit(melu, sampler, torch.optim.Adam(melu.parameters(), 0.05), iterations=10,
                  meta_batch_size=2, progress=False)
    assert _mean_query_loss(melu, fixed) < 0.95 * before  # ratings here are mostly noise


@pytest.mark.slow  # a few seconds of training on a loaded 2-core machine
def test_global_training_and_fine_tuning(sampler):
    model = _model()
    learner = GlobalRecommender(model)
    batch = sampler.sample_batch(4)
    before = learner.training_loss(batch)[0].item()
    companion.fit(learner, sampler, torch.optim.Adam(learner.parameters(), 0.02), iterations=40,
                  batch_size=4, progress=False)
    assert learner.training_loss(batch)[0].item() < 0.7 * before
    ep = sampler.sample()
    assert torch.equal(FineTuneRecommender(model, steps=0).predict(ep), learner.predict(ep))
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    tuner = FineTuneRecommender(model, steps=20, lr=0.05, adapt="decision")
    fast = tuner.adapt(ep)
    with torch.no_grad():
        support_before = float(((model(ep.support_x) - ep.support_y) ** 2).mean())
        support_after = float(((torch.func.functional_call(model, fast, (ep.support_x,))
                                - ep.support_y) ** 2).mean())
    assert support_after < support_before
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())  # untouched


def test_rating_metrics_by_hand():
    pred, true = torch.tensor([4.0, 2.0, 5.0]), torch.tensor([5.0, 1.0, 3.0])
    m = rating_metrics(pred, true, k=2)
    assert m["mae"].item() == pytest.approx(4 / 3)
    assert m["rmse"].item() == pytest.approx(math.sqrt(2))
    dcg = (2**3 - 1) / math.log2(2) + (2**5 - 1) / math.log2(3)  # predicted order: 5.0, 4.0
    ideal = (2**5 - 1) / math.log2(2) + (2**3 - 1) / math.log2(3)
    assert m["ndcg@2"].item() == pytest.approx(dcg / ideal, rel=1e-6)


def test_evaluate_all_reports_each_metric(sampler):
    results = companion.evaluate_all(MeLU(_model()), sampler, n_episodes=3, progress=False)
    assert set(results) == {"mae", "rmse", "ndcg@3"}


def test_bad_input(sampler):
    melu = MeLU(_model())
    with pytest.raises(ValueError, match="RatingEpisodeBatch"):
        melu.meta_loss([sampler.sample()])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="RatingEpisodeBatch"):
        GlobalRecommender(_model()).training_loss((1, 2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no parameters under 'decision'"):
        MeLU(nn.Linear(24, 1))
    with pytest.raises(ValueError, match="adapt"):
        FineTuneRecommender(_model(), adapt="embedding")
    with pytest.raises(ValueError, match="inner_lr"):
        MeLU(_model(), inner_lr=0.0)
    ep = sampler.sample()
    bad = type(ep)(ep.user, ep.support_items, ep.support_x, ep.support_y.long(),
                   ep.query_items, ep.query_x, ep.query_y)
    with pytest.raises(ValueError, match="support_y must be"):
        melu.evaluation_metrics(bad)
    nan = type(ep)(ep.user, ep.support_items, ep.support_x, ep.support_y,
                   ep.query_items, ep.query_x, ep.query_y * float("nan"))
    with pytest.raises(ValueError, match="NaN"):
        melu.evaluation_metrics(nan)
