"""Where an experiment's tasks come from, and the default outer optimiser.

Chapter: MAML (results of longer runs).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from companion.data import Episode, EpisodeSampler, SinusoidTasks, load_omniglot
from companion.experiments.base import AdamTrained, ExperimentConfig
from companion.training import evaluate

__all__ = ["VAL_SEED", "ShuffledSupport", "adam_optimizer", "load_data", "training_tasks"]

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
    shuffle = bool(getattr(cfg, "shuffle", False))  # sequence models: a family's field
    tasks = EpisodeSampler(data["train"], n_way=cfg.n_way, n_shot=cfg.n_shot,
                           n_query=cfg.n_query, seed=seed, shuffle=shuffle)

    def validate() -> Any:
        val: Any = EpisodeSampler(data["val"], n_way=cfg.test_n_way, n_shot=cfg.test_n_shot,
                                  n_query=cfg.test_n_query, seed=VAL_SEED)
        if shuffle:  # the same validation episodes, each support set in a random order
            val = ShuffledSupport(val, seed=VAL_SEED)
        return evaluate(learner, val, n_episodes=cfg.val_episodes, progress=False)

    return tasks, (validate if cfg.val_every else None)


def adam_optimizer(cfg: AdamTrained, learner: nn.Module) -> tuple[torch.optim.Optimizer, Any]:
    """Adam at ``outer_lr``, halved every ``lr_halve_every`` steps if that is > 0."""
    optimizer = torch.optim.Adam(learner.parameters(), lr=cfg.outer_lr)
    scheduler = (torch.optim.lr_scheduler.StepLR(optimizer, cfg.lr_halve_every, 0.5)
                 if cfg.lr_halve_every else None)
    return optimizer, scheduler


class ShuffledSupport:
    """The episodes of ``sampler``, each support set in a random order from a generator of
    its own, so the episodes (classes, images, labels) stay those of ``sampler``'s seed.

    A model that reads the support set in order (an LSTM) would otherwise see the
    class-by-class order of the fixed test episodes, which it was not trained on.

    Args:
        sampler: has ``sample() -> Episode``.
        seed: seeds the permutations.
    """

    def __init__(self, sampler: Any, *, seed: int) -> None:
        if not callable(getattr(sampler, "sample", None)):
            raise ValueError(f"sampler must have sample(), got {type(sampler).__name__}")
        self.sampler = sampler
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self) -> Episode:
        """The next episode of ``sampler`` with its support set permuted."""
        episode = self.sampler.sample()
        order = torch.randperm(len(episode.support_y), generator=self.generator)
        order = order.to(episode.support_y.device)
        return Episode(support_x=episode.support_x[order], support_y=episode.support_y[order],
                       query_x=episode.query_x, query_y=episode.query_y,
                       classes=episode.classes)
