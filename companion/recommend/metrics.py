"""The per-user scores of a rating predictor: MAE, RMSE and nDCG@k on the query movies.

Chapter: Applications (cold-start recommendation).
"""

from __future__ import annotations

from torch import Tensor

from companion.metrics import mae, ndcg_at_k, rmse

__all__ = ["check_episode", "rating_metrics"]


def rating_metrics(predictions: Tensor, targets: Tensor, *, k: int = 3) -> dict[str, Tensor]:
    """``{"mae", "rmse", f"ndcg@{k}"}`` of predicted ratings against true ones.

    nDCG ranks the movies by predicted rating and uses the true rating as the graded relevance
    (MeLU reports nDCG@1 and nDCG@3).

    Args:
        predictions: ``[n]`` predicted ratings.
        targets: ``[n]`` true ratings (1 to 5).
        k: nDCG cut-off (>= 1).
    """
    if predictions.ndim != 1:
        raise ValueError(f"predictions must be [n], got {tuple(predictions.shape)}")
    p, t = predictions.detach(), targets.detach()
    return {"mae": mae(p, t), "rmse": rmse(p, t),
            f"ndcg@{k}": ndcg_at_k(p, t.to(p.dtype), k).to(p.dtype)}


def check_episode(episode: object) -> None:
    """ValueError unless ``episode`` looks like a :class:`~companion.data.RatingEpisode`."""
    for name in ("support_x", "support_y", "query_x", "query_y"):
        t = getattr(episode, name, None)
        if not isinstance(t, Tensor):
            raise ValueError(f"episode must be a RatingEpisode (with {name}), got "
                             f"{type(episode).__name__}")
    for split in ("support", "query"):
        y: Tensor = getattr(episode, f"{split}_y")
        if not y.dtype.is_floating_point or y.ndim != 1:
            raise ValueError(f"episode.{split}_y must be [n] float ratings, got dtype {y.dtype} "
                             f"and shape {tuple(y.shape)}")
        if not bool(y.isfinite().all()):
            raise ValueError(f"episode.{split}_y holds NaN or infinite ratings")
