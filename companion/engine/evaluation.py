"""The one evaluation path: per-episode metrics, averaged with a 95% confidence interval.

An *episode* is whatever unit the evaluation is averaged over: a few-shot task, a user of a
recommender, a seed. The learner says what it measures on one:

* ``evaluation_metrics(episode) -> {name: scalar}`` if it defines it (e.g. MSE and MAE of a
  user's ratings, nDCG@10, or several accuracies);
* otherwise ``predict(episode)`` (or the learner itself, if it is a plain function) gives the
  query predictions, scored by accuracy for integer labels and by the mean squared error for
  float targets.

Non-finite inputs or predictions raise: a NaN never becomes a finite-looking score.

Chapter: Concepts (first experiment); used by every later chapter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from companion.engine.loop import move_batch
from companion.metrics import MeanCI, accuracy, mean_ci95, mse

__all__ = ["evaluate", "evaluate_all", "prediction_metrics"]


def prediction_metrics(predictions: Tensor, targets: Tensor) -> dict[str, Tensor]:
    """Accuracy for integer labels, mean squared error for float targets; non-finite raises."""
    if not torch.isfinite(predictions).all():
        raise ValueError("the learner's predictions are not finite (NaN or infinite): the "
                         "inputs were not finite or the model diverged")
    if targets.dtype.is_floating_point:
        return {"mse": mse(predictions, targets)}
    return {"accuracy": accuracy(predictions, targets)}


def _metric_function(learner: Any) -> Callable[[Any], Mapping[str, Tensor | float]]:
    own = getattr(learner, "evaluation_metrics", None)
    if callable(own):
        return own
    predict = getattr(learner, "predict", None)
    if not callable(predict):
        if not callable(learner) or isinstance(learner, nn.Module):
            raise ValueError(f"learner ({type(learner).__name__}) must define "
                             "evaluation_metrics(episode) or predict(episode), or be a "
                             "function episode -> predictions")
        predict = learner
    return lambda episode: prediction_metrics(predict(episode), episode.query_y)


def _module_of(learner: Any) -> nn.Module | None:
    """The module behind a learner, a bound method of one, or a ``functools.partial`` of it."""
    for candidate in (learner, getattr(learner, "__self__", None),
                      getattr(getattr(learner, "func", None), "__self__", None)):
        if isinstance(candidate, nn.Module):
            return candidate
    return None


def _check_inputs(episode: Any, index: int) -> None:
    for name in ("support_x", "query_x", "x"):
        t = getattr(episode, name, None)
        if isinstance(t, Tensor) and t.dtype.is_floating_point and not torch.isfinite(t).all():
            raise ValueError(f"episode {index} has non-finite values (NaN or infinite) in "
                             f"{name}; check the data")


def evaluate_all(
    learner: Any,
    sampler: Any,
    *,
    n_episodes: int = 600,
    progress: bool = True,
    desc: str = "evaluate",
) -> dict[str, MeanCI]:
    """Every metric the learner reports, as mean and 95% CI over ``n_episodes`` episodes.

    Args:
        learner: see the module docstring; an ``nn.Module`` is put in eval mode for the
            evaluation and restored afterwards.
        sampler: has ``sample()``; give it a fixed seed so that every method is scored on the
            same episodes.
        n_episodes: number of episodes (>= 2; the few-shot papers use 600).
        progress: show a tqdm bar.

    Returns:
        ``{metric name: MeanCI}``; accuracies print as percentages.
    """
    if isinstance(n_episodes, bool) or not isinstance(n_episodes, int) or n_episodes < 2:
        raise ValueError(f"n_episodes must be an int >= 2, got {n_episodes!r}")
    if not callable(getattr(sampler, "sample", None)):
        raise ValueError(f"sampler must have sample(), got {type(sampler).__name__}")
    measure = _metric_function(learner)
    module = _module_of(learner)
    param = next(module.parameters(), None) if isinstance(module, nn.Module) else None
    was_training = isinstance(module, nn.Module) and module.training
    if isinstance(module, nn.Module):
        module.eval()
    scores: dict[str, list[Tensor]] = {}
    try:
        for i in tqdm(range(n_episodes), desc=desc, disable=not progress, leave=False):
            episode = sampler.sample()
            _check_inputs(episode, i)
            if param is not None:
                episode = move_batch(episode, param.device)
            for name, value in measure(episode).items():
                scores.setdefault(name, []).append(torch.as_tensor(value).detach().reshape(()))
    finally:
        if isinstance(module, nn.Module):
            module.train(was_training)
    if not scores:
        raise ValueError("the learner's evaluation_metrics returned no metric")
    return {name: mean_ci95(torch.stack(v).cpu(), percent=name.startswith("accuracy"))
            for name, v in scores.items()}


def evaluate(
    learner: Any,
    sampler: Any,
    *,
    n_episodes: int = 600,
    metric: str | None = None,
    progress: bool = True,
    desc: str = "evaluate",
) -> MeanCI:
    """One metric (default: accuracy, or the learner's only metric) over ``n_episodes``.

    The same path as :func:`evaluate_all`, which returns every metric.

    Example:
        >>> result = evaluate(net, EpisodeSampler(test, n_way=5, n_shot=1, n_query=15, seed=1))
        >>> print(result)   # 97.33 ± 0.29% (600 episodes)
    """
    results = evaluate_all(learner, sampler, n_episodes=n_episodes, progress=progress,
                           desc=desc)
    if metric is None:
        metric = "accuracy" if "accuracy" in results or len(results) != 1 else next(
            iter(results))
    if metric not in results:
        raise ValueError(f"metric must be one of {sorted(results)}, got {metric!r}")
    return results[metric]
