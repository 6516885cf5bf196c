"""Supervised pre-training: ordinary classification over all training classes at once.

The "transfer" baseline of the Concepts chapter and the starting point of fine-tuning: train
a network with a softmax head over every source class, then reuse its body (the embedding)
for new classes. Chen et al. (2019) and Tian et al. (2020) show how strong this is.

Chapter: Concepts (first experiment); transfer learning.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from companion._checks import check_positive_int
from companion.data.dataset import ImageClassDataset
from companion.training import AccuracyCI, History, accuracy

__all__ = ["train_classifier"]


def train_classifier(
    model: nn.Module,
    dataset: ImageClassDataset,
    optimizer: torch.optim.Optimizer,
    *,
    steps: int,
    batch_size: int = 128,
    generator: torch.Generator,
    validate: Callable[[], AccuracyCI] | None = None,
    validate_every: int = 0,
    progress: bool = True,
) -> History:
    """Minimise cross-entropy over ``dataset``'s classes with random mini-batches.

    Args:
        model: maps ``[B, C, H, W]`` floats in ``[0, 1]`` to ``[B, dataset.num_classes]``.
        dataset: the source classes.
        optimizer: over ``model``'s parameters.
        steps: optimiser steps (> 0).
        batch_size: images per step (> 0), drawn uniformly without replacement per step.
        generator: draws the mini-batches (the only randomness used here).
        validate: optional function returning an :class:`AccuracyCI` (e.g. few-shot accuracy
            of the current embedding on validation classes), called every ``validate_every``
            steps, as in :func:`companion.fit`.
        progress: show a tqdm bar.

    Returns:
        A :class:`History` with the loss and training accuracy of every step.
    """
    check_positive_int("steps", steps)
    check_positive_int("batch_size", batch_size)
    if validate_every < 0 or (validate_every and validate is None):
        raise ValueError("validate_every must be >= 0, and > 0 only together with validate=")
    if batch_size > len(dataset):
        raise ValueError(f"batch_size={batch_size} exceeds the {len(dataset)} images available")
    device = next(model.parameters()).device
    history = History()
    model.train()
    began = time.perf_counter()
    for step in tqdm(range(steps), desc="pre-train", disable=not progress, leave=False):
        rows = torch.randperm(len(dataset), generator=generator)[:batch_size]
        x = dataset.images[rows.to(dataset.images.device)].to(device).float() / 255  # [B, C, H, W]
        y = dataset.labels[rows.to(dataset.labels.device)].to(device)  # [B]
        logits = model(x)  # [B, num_classes]
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history.iteration.append(step + 1)
        history.loss.append(loss.item())
        history.metrics.setdefault("accuracy", []).append(accuracy(logits.detach(), y).item())
        if validate_every and (step + 1) % validate_every == 0:
            result = validate()  # type: ignore[misc]
            model.train()
            history.validation.append({"iteration": step + 1, **result.to_dict()})
        history.seconds = time.perf_counter() - began
    return history
