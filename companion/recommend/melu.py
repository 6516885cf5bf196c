"""MeLU: meta-learned user preference estimation (Lee et al., KDD 2019), on user tasks.

MAML where a task is a user: the model embeds user and movie side information
(:class:`~companion.recommend.RatingModel`); for each user the *local update* takes a few
gradient steps on the user's support ratings, adapting only the decision layers (and the
output layer), never the embeddings; the *global update* back-propagates the query loss after
the local update into every weight (second order unless ``first_order``).

The inner loop is :func:`companion.meta.inner_adapt` with ``adapt=`` the decision layers' names.

Chapter: Applications (cold-start recommendation). References: :cite:t:`lee2019melu`,
:cite:t:`finn2017model`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from companion._checks import check_non_negative_int, check_positive_float, check_positive_int
from companion.data.movielens_tasks import RatingEpisode, RatingEpisodeBatch
from companion.meta.functional import Params, inner_adapt
from companion.recommend.metrics import check_episode, rating_metrics
from companion.recommend.model import decision_parameter_names

__all__ = ["MeLU", "MeLUConfig"]


@dataclass(frozen=True)
class MeLUConfig:
    """Hyperparameters of MeLU (the paper used tiny rates, 5e-6 local and 5e-5 global, with
    its larger embeddings; these defaults suit :class:`~companion.recommend.RatingModel`)."""

    inner_lr: float = 0.05  # step size of the local update
    inner_steps: int = 1  # local steps during meta-training
    eval_inner_steps: int = 5  # local steps for a test user
    first_order: bool = False  # drop the second-order term of the global update
    ndcg_k: int = 3  # cut-off of the reported nDCG

    def __post_init__(self) -> None:
        check_positive_float("inner_lr", self.inner_lr)
        check_positive_int("inner_steps", self.inner_steps)
        check_non_negative_int("eval_inner_steps", self.eval_inner_steps)
        check_positive_int("ndcg_k", self.ndcg_k)


class MeLU(nn.Module):
    """MAML on user tasks with a local update of the decision layers only.

    Args:
        model: a rating model with a ``decision`` sub-module (e.g.
            :class:`~companion.recommend.RatingModel`).
        config: a :class:`MeLUConfig`; keyword overrides are applied on top.

    Example:
        >>> melu = MeLU(RatingModel(), inner_lr=0.05)
        >>> fit(melu, UserTaskSampler(data, train_users, k_shot=10, seed=0),
        ...     torch.optim.Adam(melu.parameters(), 1e-3), iterations=300, meta_batch_size=16)
        >>> evaluate_all(melu, UserTaskSampler(data, test_users, k_shot=10, seed=1))
    """

    def __init__(self, model: nn.Module, config: MeLUConfig | None = None,
                 **overrides: Any) -> None:
        super().__init__()
        self.config = replace(config or MeLUConfig(), **overrides)
        self.model = model
        self.adapt_names = decision_parameter_names(model)

    def params(self) -> Params:
        """The global (meta-)parameters by name."""
        return dict(self.model.named_parameters())

    def forward(self, x: Tensor, params: Params | None = None) -> Tensor:
        return functional_call(self.model, self.params() if params is None else params, (x,))

    def adapt(self, episode: RatingEpisode, *, steps: int | None = None,
              params: Params | None = None) -> Params:
        """Local update: the user's weights after ``steps`` steps on the support ratings.

        Only the decision layers change; the result is differentiable with respect to
        ``params`` (default: the global parameters).
        """
        check_episode(episode)
        steps = check_non_negative_int(
            "steps", self.config.inner_steps if steps is None else steps)
        return inner_adapt(self.model, self.params() if params is None else params,
                           episode.support_x, episode.support_y, loss_fn=F.mse_loss,
                           steps=steps, lr=self.config.inner_lr, adapt=self.adapt_names,
                           first_order=self.config.first_order)

    def meta_loss(self, batch: RatingEpisodeBatch) -> tuple[Tensor, dict[str, Tensor]]:
        """Mean over the batch's users of the query MSE after the local update."""
        if not isinstance(batch, RatingEpisodeBatch):
            raise ValueError(f"batch must be a RatingEpisodeBatch (UserTaskSampler.sample_batch),"
                             f" got {type(batch).__name__}")
        losses = []
        for episode in batch:
            fast = self.adapt(episode)
            out = functional_call(self.model, fast, (episode.query_x,))  # [n_query]
            losses.append(F.mse_loss(out, episode.query_y))
        loss = torch.stack(losses).mean()
        return loss, {"query_mse": loss.detach()}

    def predict(self, episode: RatingEpisode) -> Tensor:
        """Query ratings after ``eval_inner_steps`` local steps: ``[n_query]``."""
        fast = self.adapt(episode, steps=self.config.eval_inner_steps)
        with torch.no_grad():
            return functional_call(self.model, fast, (episode.query_x,))

    def evaluation_metrics(self, episode: RatingEpisode) -> dict[str, Tensor]:
        """MAE, RMSE and nDCG@k on the user's query movies after the local update."""
        return rating_metrics(self.predict(episode), episode.query_y, k=self.config.ndcg_k)
