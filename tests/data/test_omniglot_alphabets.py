"""Omniglot alphabets as tasks: local labels, per-class train/test split, the real data."""

from __future__ import annotations

import pytest
import torch

from companion.data import (
    ImageClassDataset,
    alphabet_tasks,
    load_omniglot_alphabets,
    split_per_class,
    tasks_sampler,
)


def _fake(per_class: int = 4) -> ImageClassDataset:
    names = ("Beta/character01", "Alpha/character01", "Beta/character02", "Alpha/character02",
             "Alpha/character03")
    labels = torch.arange(len(names)).repeat_interleave(per_class)
    images = torch.zeros(len(labels), 1, 4, 4, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(len(labels))  # row index, to follow images around
    return ImageClassDataset(images, labels, names, "fake")


def test_alphabet_tasks_have_local_labels():
    tasks = alphabet_tasks(_fake())
    assert list(tasks) == ["Alpha", "Beta"]
    alpha = tasks["Alpha"]
    assert alpha.class_names == ("Alpha/character01", "Alpha/character02", "Alpha/character03")
    assert alpha.labels.unique().tolist() == [0, 1, 2]
    # Alpha/character02 was global class 3: rows 12..15
    assert alpha.images[alpha.labels == 1, 0, 0, 0].tolist() == [12, 13, 14, 15]
    assert list(alphabet_tasks(_fake(), ["Beta"])) == ["Beta"]
    with pytest.raises(ValueError, match="alphabets"):
        alphabet_tasks(_fake(), ["Gamma"])
    with pytest.raises(ValueError, match="alphabets"):
        alphabet_tasks(_fake(), [])


def test_split_per_class_keeps_the_first_images_of_each_class():
    train, test = split_per_class(_fake(), 3)
    assert train.class_counts().tolist() == [3] * 5 and test.class_counts().tolist() == [1] * 5
    assert train.images[train.labels == 1, 0, 0, 0].tolist() == [4, 5, 6]
    assert test.images[test.labels == 1, 0, 0, 0].tolist() == [7]
    with pytest.raises(ValueError, match="n_train"):
        split_per_class(_fake(), 4)


def test_tasks_sampler_draws_from_each_task():
    tasks = alphabet_tasks(_fake())
    batch = tasks_sampler(tasks, seed=0).sample_batch(5)
    assert batch.shared_input is None
    assert batch.x["Alpha"].shape == (5, 1, 4, 4) and batch.x["Beta"].shape == (5, 1, 4, 4)
    assert batch.x["Alpha"].dtype == torch.float32
    rows = (batch.x["Beta"][:, 0, 0, 0] * 255).round().long()
    beta_rows = set(range(0, 4)) | set(range(8, 12))
    assert set(rows.tolist()) <= beta_rows


@pytest.mark.slow
def test_real_background_alphabets(mirror, data_root):
    tasks = load_omniglot_alphabets("background", mirror=mirror, progress=False)
    assert len(tasks) == 30
    assert sum(d.num_classes for d in tasks.values()) == 964
    assert all(int(d.labels.max()) == d.num_classes - 1 for d in tasks.values())
    assert all(bool((d.class_counts() == 20).all()) for d in tasks.values())
