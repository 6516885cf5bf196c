"""Predictions of a learner that adapts weights to each episode, under both test protocols.

MAML and Reptile are tested two ways on the same episodes: *transductively* (all queries in
one batch, so batch-statistics normalisation sees the whole query set, as in the MAML paper)
and *non-transductively* (each query classified in a batch with the support set only, as in
the Reptile paper). :class:`AdaptedPredictor` gives MAML and Reptile their ``predict`` (either
protocol); both protocols use the same adapted weights, so :class:`BothProtocols` adapts once
and applies them twice, halving the test time of calling ``predict`` for each protocol.

Chapter: MAML (results tables); Reptile.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from companion._checks import check_finite_output
from companion.data.episode import Episode
from companion.meta.functional import Params, predict_queries
from companion.metrics import accuracy

__all__ = ["AdaptedPredictor", "BothProtocols", "apply_weights"]


class AdaptedPredictor:
    """``predict`` for a learner that adapts weights to an episode (MAML, Reptile).

    The learner provides ``model`` and ``evaluation_weights(episode, steps)``, the weights
    adapted to the episode's support set; this class applies them to the queries.
    """

    model: nn.Module

    def evaluation_weights(self, episode: Episode, steps: int | None = None) -> Params:
        """The weights adapted to ``episode``'s support set (each learner adapts its own
        way)."""
        raise NotImplementedError(f"{type(self).__name__} must define evaluation_weights")

    def predict(self, episode: Episode, steps: int | None = None, *,
                transductive: bool = True) -> Tensor:
        """Query predictions after adapting to the support set (:meth:`evaluation_weights`,
        ``steps`` defaulting to the learner's evaluation steps).

        ``transductive=True`` classifies all queries in one batch (batch-statistics
        normalisation sees the whole query set, as in the MAML paper); ``False`` classifies
        each query in a batch with the support set only, the Reptile paper's
        non-transductive setting (:func:`companion.meta.functional.predict_queries`).

        Raises:
            ValueError: as the learner's ``adapt`` for the support set; NaN/inf queries;
                non-finite predictions from finite inputs (adaptation diverged, or NaN
                weights).
        """
        return apply_weights(self.model, self.evaluation_weights(episode, steps), episode,
                             transductive=transductive)


def apply_weights(model: nn.Module, fast: Params, episode: Episode, *,
                  transductive: bool) -> Tensor:
    """``model``'s query predictions with the adapted weights ``fast`` under one protocol.

    Raises:
        ValueError: non-finite predictions (adaptation diverged, or NaN weights).
    """
    return check_finite_output("predictions", predict_queries(
        model, fast, episode.support_x, episode.query_x, transductive=transductive))


class BothProtocols(nn.Module):
    """Wraps a learner with ``evaluation_weights(episode)`` and ``model`` (MAML, Reptile).

    ``evaluation_metrics(episode)`` returns ``{"accuracy": transductive,
    "accuracy_non_transductive": each query with the support set only}``, for
    :func:`companion.evaluate_all`.

    Example:
        >>> results = evaluate_all(BothProtocols(maml), test_sampler)
        >>> results["accuracy"], results["accuracy_non_transductive"]
    """

    def __init__(self, learner: Any) -> None:
        super().__init__()
        if not (callable(getattr(learner, "evaluation_weights", None))
                and isinstance(getattr(learner, "model", None), nn.Module)):
            raise ValueError(f"learner must have evaluation_weights(episode) and a model (MAML, "
                             f"Reptile), got {type(learner).__name__}")
        self.learner = learner

    def evaluation_metrics(self, episode: Episode) -> dict[str, Tensor]:
        fast = self.learner.evaluation_weights(episode)  # adapted once
        scores = {}
        for name, transductive in (("accuracy", True), ("accuracy_non_transductive", False)):
            out = apply_weights(self.learner.model, fast, episode, transductive=transductive)
            scores[name] = accuracy(out, episode.query_y)  # out: [n_query, n_way]
        return scores
