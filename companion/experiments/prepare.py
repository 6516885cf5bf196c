"""An experiment's state before its first training step: learner, outer optimiser, data and
task stream. ``run`` and ``estimate`` both start here, so an estimate times what a run does.

Chapter: MAML (results of longer runs); every chapter's stored runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from companion.experiments.base import ExperimentConfig
from companion.experiments.registry import SourceFactory, spec_for
from companion.experiments.sources import load_data, training_tasks
from companion.utils import seed_everything

__all__ = ["Prepared", "prepare"]


@dataclass
class Prepared:
    """What :func:`prepare` built (``source`` makes further task streams, e.g. smaller ones)."""

    learner: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    data: dict[str, Any]
    tasks: Any
    validate: Callable[[], Any] | None
    source: SourceFactory


def prepare(cfg: ExperimentConfig, seed: int, device: torch.device, *,
            task_seed: int) -> Prepared:
    """Seed with ``seed`` (the initial weights), build the learner on ``device`` with its
    optimiser, load the data and open the training tasks drawn with ``task_seed`` (a run
    on several processes gives each its own)."""
    spec = spec_for(cfg)
    seed_everything(seed)
    learner = spec.build(cfg, seed).to(device)
    optimizer, scheduler = spec.optimizer(cfg, learner)
    data = load_data(cfg, device)
    source = spec.training_source or training_tasks
    tasks, validate = source(cfg, data, learner, task_seed)
    return Prepared(learner, optimizer, scheduler, data, tasks, validate, source)
