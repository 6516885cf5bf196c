"""The interface shared by the metric-based methods (Prototypical, Matching, Relation networks).

A metric learner classifies queries by comparing them with the support set in a learned
space; it has no inner optimisation. Every method here implements one function,
``_scores(support_x, support_labels, n_way, query_x)``, and inherits:

* ``forward(support_x, support_y, query_x)`` -> ``[n_query, n_way]`` scores, for support
  labels of *any* integer values: they are remapped to ``0 .. n_way-1`` in sorted order,
  never assumed to be that already (``classes_of`` tells the column order);
* ``fit_support(support_x, support_y)`` then ``score(query_x)``, a stateful convenience;
* ``meta_loss(batch)`` and ``predict(episode)``, so the book's shared :func:`companion.fit`
  and :func:`companion.evaluate` train and test every method the same way.

Chapter: metric methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from companion._checks import check_finite, check_finite_output, check_same_kind, check_tensor
from companion.data.episode import Episode, EpisodeBatch
from companion.metrics import accuracy

__all__ = ["MetricLearner", "remap_labels"]


def remap_labels(support_y: Tensor, query_y: Tensor | None = None
                 ) -> tuple[Tensor, Tensor, Tensor | None]:
    """Map arbitrary integer labels to ``0 .. n_way-1`` (the sorted order of the classes).

    Args:
        support_y: ``[n_support]`` integer labels, e.g. ``[7, 7, 3, 9]``.
        query_y: optional ``[n_query]`` labels; each must occur in ``support_y``.

    Returns:
        ``classes`` ``[n_way]`` (sorted original labels), the remapped support labels and the
        remapped query labels (or None).

    Raises:
        ValueError: non-integer labels, or a query label absent from the support set.
    """
    if support_y.dtype.is_floating_point or support_y.ndim != 1 or support_y.numel() == 0:
        raise ValueError("support labels must be a non-empty 1-D integer tensor")
    classes = torch.unique(support_y)  # sorted
    support = torch.searchsorted(classes, support_y)
    if query_y is None:
        return classes, support, None
    if query_y.dtype.is_floating_point or query_y.ndim != 1:
        raise ValueError("query labels must be a 1-D integer tensor")
    query = torch.searchsorted(classes, query_y).clamp_max(len(classes) - 1)
    unknown = classes[query] != query_y
    if unknown.any():
        raise ValueError(f"query labels {sorted(set(query_y[unknown].tolist()))} do not occur "
                         f"in the support set {classes.tolist()}")
    return classes, support, query


class MetricLearner(nn.Module, ABC):
    """Base class of the metric-based few-shot classifiers (see the module docstring)."""

    @abstractmethod
    def _scores(self, support_x: Tensor, support_labels: Tensor, n_way: int,
                query_x: Tensor) -> Tensor:
        """``[n_query, n_way]`` scores; ``support_labels`` are already ``0 .. n_way-1``."""

    def forward(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        """Scores of every query for every support class (columns: sorted class labels).

        Raises:
            ValueError: non-tensor arguments, mismatched counts, shapes, dtypes or devices,
                NaN or infinite inputs, or (with finite inputs) non-finite scores.
        """
        for name, t in (("support_x", support_x), ("support_y", support_y),
                        ("query_x", query_x)):
            check_tensor(name, t)
        if support_x.ndim < 2 or query_x.ndim < 2:
            raise ValueError(f"support_x and query_x must be [n, *input_shape] (at least 2-D), "
                             f"got shapes {tuple(support_x.shape)} and {tuple(query_x.shape)}")
        if support_y.ndim < 1:
            raise ValueError("support_y must be a 1-D tensor of class labels")
        if support_x.shape[0] != support_y.shape[0]:
            raise ValueError(f"{support_x.shape[0]} support inputs but {support_y.shape[0]} "
                             "labels")
        if support_x.shape[1:] != query_x.shape[1:]:
            raise ValueError(f"support and query inputs differ in shape: "
                             f"{tuple(support_x.shape[1:])} vs {tuple(query_x.shape[1:])}")
        check_same_kind("support_x", support_x, "query_x", query_x)
        if support_y.device != support_x.device:
            raise ValueError(f"support_y is on {support_y.device} but support_x on "
                             f"{support_x.device}; move them to one device")
        check_finite("support_x", support_x)
        check_finite("query_x", query_x)
        classes, labels, _ = remap_labels(support_y)
        return check_finite_output("scores", self._scores(support_x, labels, len(classes),
                                                           query_x))

    @staticmethod
    def classes_of(support_y: Tensor) -> Tensor:
        """The original label of each score column: the sorted distinct support labels."""
        return remap_labels(support_y)[0]

    def fit_support(self, support_x: Tensor, support_y: Tensor) -> MetricLearner:
        """Remember a support set for :meth:`score` (a convenience for interactive use)."""
        self._support = (support_x, support_y)
        return self

    def score(self, query_x: Tensor) -> Tensor:
        """Scores for ``query_x`` against the support set given to :meth:`fit_support`."""
        if not hasattr(self, "_support"):
            raise ValueError("call fit_support(support_x, support_y) before score(query_x)")
        return self(self._support[0], self._support[1], query_x)

    def loss(self, scores: Tensor, query_labels: Tensor) -> Tensor:
        """Cross-entropy of the scores (Relation networks override this with MSE)."""
        return F.cross_entropy(scores, query_labels)

    def episode_loss(self, episode: Episode) -> tuple[Tensor, Tensor]:
        """Loss and accuracy on one episode's queries."""
        if not isinstance(episode, Episode):
            raise ValueError(f"episode_loss needs an Episode, got {type(episode).__name__}")
        check_finite("episode.support_x", episode.support_x)
        check_finite("episode.query_x", episode.query_x)
        return self._episode_loss(episode)

    def _episode_loss(self, episode: Episode) -> tuple[Tensor, Tensor]:
        _, support, query = remap_labels(episode.support_y, episode.query_y)
        assert query is not None
        scores = self._scores(episode.support_x, support, int(support.max()) + 1,
                              episode.query_x)
        return self.loss(scores, query), accuracy(scores.detach(), query)

    def meta_loss(self, batch: EpisodeBatch) -> tuple[Tensor, dict[str, Tensor]]:
        """Mean query loss over the batch's episodes, and their mean accuracy."""
        if not isinstance(batch, EpisodeBatch):
            raise ValueError(f"meta_loss needs an EpisodeBatch, got {type(batch).__name__}")
        check_finite("batch.support_x", batch.support_x)  # one check for the whole batch
        check_finite("batch.query_x", batch.query_x)
        pairs = [self._episode_loss(episode) for episode in batch]
        return (torch.stack([p[0] for p in pairs]).mean(),
                {"accuracy": torch.stack([p[1] for p in pairs]).mean()})

    @torch.no_grad()
    def predict(self, episode: Episode) -> Tensor:
        """Query scores for an episode (for :func:`companion.evaluate`)."""
        if not isinstance(episode, Episode):
            raise ValueError(f"predict needs an Episode (e.g. sampler.sample()), got "
                             f"{type(episode).__name__}")
        return self(episode.support_x, episode.support_y, episode.query_x)
