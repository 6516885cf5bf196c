"""Per-user fine-tuning of a trained global model on the user's support ratings.

The transfer-learning answer to cold start: start from the global model
(:class:`~companion.recommend.GlobalRecommender`) and take a few gradient steps on the user's
``k`` support ratings, then predict the query movies. Unlike MeLU the starting point was not
trained *for* being fine-tuned.

Chapter: Applications (cold-start recommendation). References: :cite:t:`lee2019melu`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from companion._checks import check_non_negative_int, check_positive_float, check_positive_int
from companion.data.movielens_tasks import RatingEpisode
from companion.meta.functional import Params, inner_adapt
from companion.recommend.metrics import check_episode, rating_metrics
from companion.recommend.model import decision_parameter_names

__all__ = ["FineTuneRecommender"]


class FineTuneRecommender(nn.Module):
    """Fine-tune a copy of the global model's weights on each user's support set.

    Args:
        model: the trained global rating model (its weights are never changed).
        steps: gradient steps per user (0 = the global model).
        lr: step size of the plain gradient descent.
        adapt: ``"all"`` parameters, or only the ``"decision"`` layers (as MeLU).
        ndcg_k: cut-off of the nDCG in :meth:`evaluation_metrics`.
    """

    def __init__(self, model: nn.Module, *, steps: int = 10, lr: float = 0.01,
                 adapt: str = "all", ndcg_k: int = 3) -> None:
        super().__init__()
        self.model = model
        self.steps = check_non_negative_int("steps", steps)
        self.lr = check_positive_float("lr", lr)
        if adapt not in ("all", "decision"):
            raise ValueError(f"adapt must be 'all' or 'decision', got {adapt!r}")
        self.adapt_names = (tuple(n for n, _ in model.named_parameters()) if adapt == "all"
                            else decision_parameter_names(model))
        self.ndcg_k = check_positive_int("ndcg_k", ndcg_k)

    def adapt(self, episode: RatingEpisode) -> Params:
        """The user's fine-tuned weights (detached from the global model's)."""
        check_episode(episode)
        start = {k: v.detach() for k, v in self.model.named_parameters()}
        fast = inner_adapt(self.model, start, episode.support_x, episode.support_y,
                           loss_fn=F.mse_loss, steps=self.steps, lr=self.lr,
                           adapt=self.adapt_names, first_order=True)
        return {k: v.detach() for k, v in fast.items()}

    def predict(self, episode: RatingEpisode) -> Tensor:
        """Predicted ratings of the query movies after fine-tuning: ``[n_query]``."""
        fast = self.adapt(episode)
        with torch.no_grad():
            return functional_call(self.model, fast, (episode.query_x,))

    def evaluation_metrics(self, episode: RatingEpisode) -> dict[str, Tensor]:
        """MAE, RMSE and nDCG@k on the query movies after fine-tuning."""
        return rating_metrics(self.predict(episode), episode.query_y, k=self.ndcg_k)
