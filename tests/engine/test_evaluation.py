"""One evaluation path: default metrics, a learner's own metrics, and non-finite values."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion import EpisodeSampler, evaluate
from companion.data import Episode
from companion.engine import evaluate_all


class _Oracle:
    def predict(self, episode: Episode) -> torch.Tensor:
        return nn.functional.one_hot(episode.query_y, episode.n_way).float()


class _Sequence:
    """Hands out fixed episodes (for inputs a sampler would never produce)."""

    def __init__(self, episode: Episode) -> None:
        self.episode = episode

    def sample(self) -> Episode:
        return self.episode


def _regression_episode(scale: float = 1.0) -> Episode:
    x = torch.linspace(-1, 1, 6)[:, None]
    return Episode(x, scale * x, x, scale * x)


def test_float_targets_are_scored_by_mse():
    result = evaluate(lambda ep: torch.zeros_like(ep.query_y), _Sequence(_regression_episode()),
                      n_episodes=3, progress=False)
    assert result.mean == pytest.approx(_regression_episode().query_y.square().mean().item())
    assert "%" not in str(result)


class _Recommender(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def evaluation_metrics(self, episode: Episode):
        error = self.w * episode.query_x - episode.query_y
        return {"mae": error.abs().mean(), "rmse": error.square().mean().sqrt()}


def test_a_learners_own_metrics_all_come_back():
    learner = _Recommender()
    learner.train()
    results = evaluate_all(learner, _Sequence(_regression_episode(2.0)), n_episodes=2,
                           progress=False)
    assert set(results) == {"mae", "rmse"} and results["mae"].mean == pytest.approx(
        _regression_episode().query_x.abs().mean().item())
    assert learner.training  # restored
    with pytest.raises(ValueError, match="metric must be one of"):
        evaluate(learner, _Sequence(_regression_episode()), n_episodes=2, progress=False)
    assert evaluate(learner, _Sequence(_regression_episode()), n_episodes=2, metric="mae",
                    progress=False).mean == pytest.approx(0.0)


def test_non_finite_inputs_and_predictions_raise(tiny_dataset):
    x = torch.zeros(2, 1, 4, 4)
    bad = Episode(x, torch.tensor([0, 1]), x.clone().fill_(float("nan")), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"non-finite values .* query_x"):
        evaluate(_Oracle(), _Sequence(bad), n_episodes=2, progress=False)
    sampler = EpisodeSampler(tiny_dataset, n_way=2, n_shot=1, n_query=1, seed=0)
    with pytest.raises(ValueError, match="predictions are not finite"):
        evaluate(lambda ep: torch.full((2, 2), float("nan")), sampler, n_episodes=2,
                 progress=False)


def test_bad_arguments(tiny_dataset):
    sampler = EpisodeSampler(tiny_dataset, n_way=2, n_shot=1, n_query=1, seed=0)
    with pytest.raises(ValueError, match="n_episodes"):
        evaluate(_Oracle(), sampler, n_episodes=1)
    with pytest.raises(ValueError, match="sampler must have sample"):
        evaluate(_Oracle(), object(), n_episodes=2)
    with pytest.raises(ValueError, match="evaluation_metrics"):
        evaluate(nn.Linear(2, 2), sampler, n_episodes=2)
