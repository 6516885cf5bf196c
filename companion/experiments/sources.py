"""Where an experiment's tasks come from, and the default outer optimiser.

Chapter: MAML (results of longer runs).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from companion.data import EpisodeSampler, SinusoidTasks, load_omniglot
from companion.experiments.base import AdamTrained, ExperimentConfig
from companion.training import evaluate

__all__ = ["VAL_SEED", "adam_optimizer", "load_data", "training_tasks"]

VAL_SEED = 10_000


def load_data(cfg: ExperimentConfig, device: torch.device) -> dict[str, Any]:
    """``{"tasks": SinusoidTasks}``, or the Omniglot ``train``/``val``/``test`` splits on
    ``device``."""
    if cfg.dataset == "sinusoid":
        return {"tasks": SinusoidTasks()}
    return {split: load_omniglot(split, progress=False).to(device)
            for split in ("train", "val", "test")}


def training_tasks(cfg: ExperimentConfig, data: dict[str, Any], learner: nn.Module,
                   seed: int) -> tuple[Any, Any]:
    """The training task source (seeded by ``seed``) and a validation function, or None."""
    if cfg.dataset == "sinusoid":
        return data["tasks"].sampler(n_support=cfg.n_shot, n_query=cfg.n_query, seed=seed), None
    tasks = EpisodeSampler(data["train"], n_way=cfg.n_way, n_shot=cfg.n_shot,
                           n_query=cfg.n_query, seed=seed)

    def validate() -> Any:
        val = EpisodeSampler(data["val"], n_way=cfg.test_n_way, n_shot=cfg.test_n_shot,
                             n_query=cfg.test_n_query, seed=VAL_SEED)
        return evaluate(learner, val, n_episodes=cfg.val_episodes, progress=False)

    return tasks, (validate if cfg.val_every else None)


def adam_optimizer(cfg: AdamTrained, learner: nn.Module) -> tuple[torch.optim.Optimizer, Any]:
    """Adam at ``outer_lr``, halved every ``lr_halve_every`` steps if that is > 0."""
    optimizer = torch.optim.Adam(learner.parameters(), lr=cfg.outer_lr)
    scheduler = (torch.optim.lr_scheduler.StepLR(optimizer, cfg.lr_halve_every, 0.5)
                 if cfg.lr_halve_every else None)
    return optimizer, scheduler
