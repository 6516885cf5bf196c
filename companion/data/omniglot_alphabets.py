"""Omniglot alphabets as tasks: each alphabet's character classification is one task.

The 50 alphabets differ in how related they are (e.g. Latin vs Greek vs Braille), which lets
the multi-task chapter show positive and negative transfer on data the earlier chapters use.
Each task keeps its own, *local* labels ``0 .. n_characters - 1``. Images are split into
training and test sets by drawer: the first ``n_train`` drawers of every character train.

Chapter: Multi-task learning (data). Reference: :cite:t:`lake2015human`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch

from companion._checks import check_positive_int
from companion.data.dataset import ImageClassDataset
from companion.data.multitask_batch import MultiTaskSampler
from companion.data.omniglot import load_omniglot

__all__ = ["alphabet_tasks", "load_omniglot_alphabets", "split_per_class", "tasks_sampler"]


def alphabet_tasks(dataset: ImageClassDataset,
                   alphabets: Sequence[str] | None = None) -> dict[str, ImageClassDataset]:
    """Split an Omniglot set into one data set per alphabet, labels local to each alphabet.

    Args:
        dataset: classes named ``"Alphabet/characterNN[/rotDDD]"`` (as ``load_omniglot``).
        alphabets: which alphabets, in this order (default: all, sorted).

    Returns:
        alphabet name -> its characters, relabelled ``0 .. n - 1`` in the original order.
    """
    by_alphabet: dict[str, list[int]] = {}
    for c, name in enumerate(dataset.class_names):
        by_alphabet.setdefault(name.split("/")[0], []).append(c)
    chosen = sorted(by_alphabet) if alphabets is None else list(alphabets)
    if not chosen:
        raise ValueError("alphabets must name at least one alphabet")
    unknown = [a for a in chosen if a not in by_alphabet]
    if unknown:
        raise ValueError(f"alphabets: {unknown} not in {dataset.name}; it has "
                         f"{sorted(by_alphabet)}")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"alphabets must be distinct, got {chosen}")
    return {a: dataset.subset(by_alphabet[a], name=f"{dataset.name}/{a}") for a in chosen}


def split_per_class(dataset: ImageClassDataset,
                    n_train: int) -> tuple[ImageClassDataset, ImageClassDataset]:
    """The first ``n_train`` images of every class (for Omniglot: drawers) vs the rest.

    Raises:
        ValueError: a class with ``n_train`` images or fewer (its test part would be empty).
    """
    check_positive_int("n_train", n_train)
    counts = dataset.class_counts()
    if int(counts.min()) <= n_train:
        raise ValueError(f"n_train={n_train} leaves no test image for a class with "
                         f"{int(counts.min())} images")
    labels = dataset.labels.cpu()
    rank = torch.zeros_like(labels)  # position of each image within its class
    seen = torch.zeros(dataset.num_classes, dtype=torch.int64)
    for i, c in enumerate(labels.tolist()):
        rank[i] = seen[c]
        seen[c] += 1
    train = (rank < n_train).nonzero().squeeze(1)
    test = (rank >= n_train).nonzero().squeeze(1)

    def take(idx: torch.Tensor, part: str) -> ImageClassDataset:
        idx = idx.to(dataset.images.device)
        return ImageClassDataset(dataset.images[idx], dataset.labels[idx], dataset.class_names,
                                 f"{dataset.name}[{part}]")

    return take(train, "train"), take(test, "test")


def load_omniglot_alphabets(
    split: str = "background",
    *,
    alphabets: Sequence[str] | None = None,
    image_size: int = 28,
    root: str | os.PathLike[str] | None = None,
    mirror: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: bool = True,
) -> dict[str, ImageClassDataset]:
    """Lake's ``"background"`` (30 alphabets) or ``"evaluation"`` (20) split, one task each."""
    if split not in ("background", "evaluation"):
        raise ValueError(f"split must be 'background' or 'evaluation', got {split!r}")
    dataset = load_omniglot(split, image_size=image_size, root=root, mirror=mirror,
                            download=download, progress=progress)
    return alphabet_tasks(dataset, alphabets)


def tasks_sampler(tasks: Mapping[str, ImageClassDataset], *,
                  generator: torch.Generator | None = None,
                  seed: int | None = None) -> MultiTaskSampler:
    """A sampler of per-task mini-batches (each task its own images, scaled to ``[0, 1]``)."""
    if not tasks:
        raise ValueError("tasks must hold at least one data set")
    return MultiTaskSampler.from_arrays({t: d.images for t, d in tasks.items()},
                                        {t: d.labels for t, d in tasks.items()},
                                        generator=generator, seed=seed)
