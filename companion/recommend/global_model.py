"""The global (non-personalised) recommender: one model trained on every meta-train rating.

The baseline of cold-start recommendation: the side information of the user (age, gender,
occupation, zip region) enters the model, but nothing is adapted to the user's own ratings; the
support set of a test user is ignored.

Chapter: Applications (cold-start recommendation). References: :cite:t:`lee2019melu`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from companion._checks import check_positive_int
from companion.data.movielens_tasks import RatingEpisode, RatingEpisodeBatch
from companion.recommend.metrics import check_episode, rating_metrics

__all__ = ["GlobalRecommender", "pooled_ratings"]


def pooled_ratings(batch: RatingEpisodeBatch) -> tuple[Tensor, Tensor]:
    """Every (support and query) rating of the batch's users in one set: ``[N, 24]``, ``[N]``."""
    if not isinstance(batch, RatingEpisodeBatch):
        raise ValueError(f"batch must be a RatingEpisodeBatch (UserTaskSampler.sample_batch), "
                         f"got {type(batch).__name__}")
    for episode in batch:
        check_episode(episode)
    x = torch.cat([t for e in batch for t in (e.support_x, e.query_x)])  # [N, 24]
    y = torch.cat([t for e in batch for t in (e.support_y, e.query_y)])  # [N]
    return x, y


class GlobalRecommender(nn.Module):
    """Minimise the squared rating error over all ratings of the meta-train users.

    Args:
        model: a rating model, ``[n, 24]`` int64 -> ``[n]`` (e.g.
            :class:`~companion.recommend.RatingModel`).
        ndcg_k: cut-off of the nDCG reported by :meth:`evaluation_metrics`.

    Example:
        >>> learner = GlobalRecommender(RatingModel())
        >>> fit(learner, UserTaskSampler(data, train_users, k_shot=10, seed=0),
        ...     torch.optim.Adam(learner.parameters(), 1e-3), iterations=500, batch_size=32)
    """

    def __init__(self, model: nn.Module, *, ndcg_k: int = 3) -> None:
        super().__init__()
        self.model = model
        self.ndcg_k = check_positive_int("ndcg_k", ndcg_k)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def training_loss(self, batch: RatingEpisodeBatch) -> tuple[Tensor, dict[str, Tensor]]:
        """Mean squared error on the pooled ratings of the batch's users, and its MAE."""
        x, y = pooled_ratings(batch)
        out = self.model(x)  # [N]
        loss = F.mse_loss(out, y)
        return loss, {"mae": (out - y).abs().mean().detach()}

    def predict(self, episode: RatingEpisode) -> Tensor:
        """Predicted ratings of the query movies (``[n_query]``); the support is not used."""
        check_episode(episode)
        with torch.no_grad():
            return self.model(episode.query_x)

    def evaluation_metrics(self, episode: RatingEpisode) -> dict[str, Tensor]:
        """MAE, RMSE and nDCG@k on the query movies."""
        return rating_metrics(self.predict(episode), episode.query_y, k=self.ndcg_k)
