"""Test protocols the method families share: few-shot episodes with adaptation, and
sinusoid regression curves.

Every method and training seed is tested on the same episodes (``TEST_SEED``).

Chapter: MAML (the results tables).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from companion.data import EpisodeBatch, EpisodeSampler, SinusoidTasks
from companion.engine import evaluate_all
from companion.experiments.base import ExperimentConfig
from companion.meta.maml import MAML, adaptation_curve
from companion.meta.protocols import BothProtocols
from companion.training import evaluate as evaluate_episodes
from companion.training import mean_ci95

__all__ = ["TEST_SEED", "evaluate_adaptation", "evaluate_regression", "fixed_test_sampler",
           "omniglot_protocol", "regression_batch", "robust_summary"]

TEST_SEED = 2024


def omniglot_protocol(cfg: ExperimentConfig) -> dict[str, Any]:
    """The test settings a result records (Omniglot)."""
    return {"dataset": "omniglot (Vinyals test split)", "n_way": cfg.test_n_way,
            "n_shot": cfg.test_n_shot, "n_query": cfg.test_n_query,
            "episodes": cfg.test_episodes}


def fixed_test_sampler(cfg: ExperimentConfig, data: dict[str, Any], n_way: int | None = None,
                       n_shot: int | None = None) -> EpisodeSampler:
    """The fixed test episodes (default: the configuration's test shape)."""
    return EpisodeSampler(data["test"], n_way=n_way or cfg.test_n_way,
                          n_shot=n_shot or cfg.test_n_shot, n_query=cfg.test_n_query,
                          seed=TEST_SEED)


def fixed_and_extra_tests(cfg: Any, learner: Any, data: dict[str, Any], *,
                          progress: bool) -> tuple[Any, dict[str, Any]]:
    """Accuracy on the fixed test episodes, and on each ``cfg.extra_tests`` (n_way, n_shot)
    shape as ``{"<n>-way <k>-shot": MeanCI dict}``; each query classified as ``learner`` does."""
    accuracy = evaluate_episodes(learner, fixed_test_sampler(cfg, data),
                                 n_episodes=cfg.test_episodes, progress=progress)
    extra = {f"{n_way}-way {n_shot}-shot": evaluate_episodes(
                learner, fixed_test_sampler(cfg, data, n_way, n_shot),
                n_episodes=cfg.test_episodes, progress=progress).to_dict()
             for n_way, n_shot in cfg.extra_tests}
    return accuracy, extra


def evaluate_adaptation(cfg: Any, data: dict[str, Any], learner: Any,
                        progress: bool) -> dict[str, Any]:
    """Accuracy of a learner that adapts by gradient steps (MAML, Reptile), with all queries
    in one batch and with each on its own, from one adaptation per test episode."""
    both = evaluate_all(BothProtocols(learner), fixed_test_sampler(cfg, data),
                        n_episodes=cfg.test_episodes, progress=progress)
    accuracy, one_by_one = both["accuracy"], both["accuracy_non_transductive"]
    return {"test": accuracy.to_dict(), "test_non_transductive": one_by_one.to_dict(),
            "protocol": {
                **omniglot_protocol(cfg), "inner_steps": cfg.eval_inner_steps,
                "test": "transductive: all queries in one batch (batch statistics of the "
                        "query set)",
                "test_non_transductive": "each query in a batch with the support set only"}}


Adaptable = Callable[[int], tuple[MAML, float]]  # support size K -> (adapter, its step size)


def evaluate_regression(cfg: Any, tasks: SinusoidTasks, device: torch.device,
                        adaptable: Adaptable) -> dict[str, Any]:
    """MSE after 0..eval_inner_steps steps for each K in test_shots (100 query points)."""
    curves, lrs = {}, {}
    for k in cfg.test_shots:
        batch = regression_batch(tasks, cfg.test_episodes, k, TEST_SEED + k).to(device)
        maml, lrs[k] = adaptable(k)
        per_task = adaptation_curve(maml, batch, cfg.eval_inner_steps)  # [tasks, steps + 1]
        curves[str(k)] = [robust_summary(per_task[:, s]) for s in range(per_task.shape[1])]
    return {"mse_vs_steps": curves, "fine_tune_lr": {str(k): v for k, v in lrs.items()},
            "protocol": {"dataset": "sinusoid (A in [0.1, 5], phase in [0, pi], x in [-5, 5])",
                         "test_tasks": cfg.test_episodes, "query_points": 100,
                         "summary": "mean and 95% CI over tasks whose MSE stayed finite; "
                                    "median over all tasks; n_diverged = non-finite MSE",
                         "support_sizes": list(cfg.test_shots),
                         "steps": list(range(cfg.eval_inner_steps + 1))}}


def robust_summary(values: torch.Tensor) -> dict[str, Any]:
    """Mean and 95% CI over the tasks whose error stayed finite, the median over all tasks,
    and how many diverged (non-finite error): adaptation can blow up on a rare task."""
    finite = values[torch.isfinite(values)]
    summary = mean_ci95(finite).to_dict() if len(finite) >= 2 else {
        "mean": float("nan"), "ci95": float("nan"), "n_episodes": len(finite)}
    return {**summary,
            "median": values.nan_to_num(nan=torch.inf, posinf=torch.inf).median().item(),
            "n_diverged": int(len(values) - len(finite))}


def regression_batch(tasks: SinusoidTasks, n: int, k: int, seed: int) -> EpisodeBatch:
    """``n`` sinusoid tasks with ``k`` support and 100 query points, from ``seed``."""
    batch, _ = tasks.sample(n, n_support=k, n_query=100,
                            generator=torch.Generator().manual_seed(seed))
    return batch
