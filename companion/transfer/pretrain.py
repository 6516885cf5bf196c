"""Supervised pre-training: ordinary classification over all training classes at once.

The "transfer" baseline of the Concepts chapter and the starting point of fine-tuning: train
a network with a softmax head over every source class, then reuse its body (the embedding)
for new classes. Chen et al. (2019) and Tian et al. (2020) show how strong this is.

Chapter: Concepts (first experiment); transfer learning.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from companion._checks import check_positive_int
from companion.data.batches import BatchSampler
from companion.data.dataset import ImageClassDataset
from companion.engine.loop import History, fit
from companion.metrics import MeanCI
from companion.supervised import SupervisedLearner

__all__ = ["train_classifier"]


def train_classifier(
    model: nn.Module,
    dataset: ImageClassDataset,
    optimizer: torch.optim.Optimizer,
    *,
    steps: int,
    batch_size: int = 128,
    generator: torch.Generator,
    validate: Callable[[], MeanCI] | None = None,
    validate_every: int = 0,
    progress: bool = True,
) -> History:
    """Minimise cross-entropy over ``dataset``'s classes with random mini-batches.

    A use of the shared loop: ``fit(SupervisedLearner(model), BatchSampler(dataset,
    generator=generator), optimizer, iterations=steps, batch_size=batch_size)``.

    Args:
        model: maps ``[B, C, H, W]`` floats in ``[0, 1]`` to ``[B, dataset.num_classes]``.
        dataset: the source classes.
        optimizer: over ``model``'s parameters.
        steps: optimiser steps (> 0).
        batch_size: images per step (> 0), drawn uniformly without replacement per step.
        generator: draws the mini-batches (the only randomness used here).
        validate: optional function returning a :class:`~companion.metrics.MeanCI` (e.g.
            few-shot accuracy of the current embedding on validation classes), called every
            ``validate_every`` steps, as in :func:`companion.fit`.
        progress: show a tqdm bar.

    Returns:
        A :class:`History` with the loss and training accuracy of every step.
    """
    check_positive_int("steps", steps)
    check_positive_int("batch_size", batch_size)
    if batch_size > len(dataset):
        raise ValueError(f"batch_size={batch_size} exceeds the {len(dataset)} images available")
    return fit(SupervisedLearner(model), BatchSampler(dataset, generator=generator), optimizer,
               iterations=steps, batch_size=batch_size, validate=validate,
               validate_every=validate_every, progress=progress, desc="pre-train")
