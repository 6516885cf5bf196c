"""MultiMNIST from the MNIST test set: deterministic, labels match the digits placed, shapes."""

from __future__ import annotations

import pytest
import torch

from companion.data import load_mnist, load_multimnist
from companion.data.multimnist import MULTIMNIST_SPLITS, compose_pairs


@pytest.fixture(scope="module")
def mnist(mirror, tmp_path_factory):
    return load_mnist("test", mirror=mirror, root=tmp_path_factory.mktemp("data"),
                      progress=False)


def test_shapes_sizes_and_disjoint_splits(mnist):
    splits = {s: load_multimnist(s, mnist=mnist) for s in MULTIMNIST_SPLITS}
    assert {s: len(d) for s, d in splits.items()} == {"train": 8000, "val": 1000, "test": 1000}
    train = splits["train"]
    assert train.images.shape == (8000, 1, 36, 36) and train.images.dtype == torch.uint8
    assert train.left.shape == train.right.shape == (8000,)
    used = [set(d.sources.flatten().tolist()) for d in splits.values()]
    assert len(used[0] | used[1] | used[2]) == 10_000  # every digit used, in one split only
    for d in splits.values():  # every digit once on each side, never with itself
        assert sorted(d.sources[:, 0].tolist()) == sorted(d.sources[:, 1].tolist())
        assert bool((d.sources[:, 0] != d.sources[:, 1]).all())


def test_labels_are_those_of_the_digits_placed(mnist):
    data = load_multimnist("val", mnist=mnist, seed=3)
    torch.testing.assert_close(data.left, mnist.labels[data.sources[:, 0]])
    torch.testing.assert_close(data.right, mnist.labels[data.sources[:, 1]])
    # the image is the pixel-wise max of the left digit at (1, 1) and the right one at (7, 7)
    k = 17
    canvas_left = torch.zeros(36, 36, dtype=torch.uint8)
    canvas_right = torch.zeros(36, 36, dtype=torch.uint8)
    canvas_left[1:29, 1:29] = mnist.images[data.sources[k, 0], 0]
    canvas_right[7:35, 7:35] = mnist.images[data.sources[k, 1], 0]
    torch.testing.assert_close(data.images[k, 0], torch.maximum(canvas_left, canvas_right))


def test_deterministic_by_seed(mnist):
    a = load_multimnist("test", mnist=mnist, seed=5)
    b = load_multimnist("test", mnist=mnist, seed=5)
    c = load_multimnist("test", mnist=mnist, seed=6)
    assert torch.equal(a.images, b.images) and torch.equal(a.sources, b.sources)
    assert not torch.equal(a.sources, c.sources)
    assert set(a.sources.flatten().tolist()) == set(c.sources.flatten().tolist())  # same split


def test_28_pixel_version_and_sampler(mnist):
    small = load_multimnist("val", mnist=mnist, image_size=28)
    assert small.images.shape == (1000, 1, 28, 28)
    batch = small.sampler(seed=0).sample_batch(16)
    assert batch.tasks == ("left", "right") and batch.shared_input is not None
    assert batch.shared_input.shape == (16, 1, 28, 28) and float(batch.shared_input.max()) <= 1
    full = small.full_batch()
    assert torch.equal(full.y["left"], small.left)


def test_compose_pairs_by_hand_and_bad_input():
    digits = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    digits[0, 0, 0, 0] = 200  # top-left pixel of digit 0
    digits[1, 0, 27, 27] = 100  # bottom-right pixel of digit 1
    img = compose_pairs(digits, torch.tensor([0]), torch.tensor([1]), shift=4)
    assert img[0, 0, 0, 0] == 200 and img[0, 0, 35, 35] == 100 and int(img.sum()) == 300
    with pytest.raises(ValueError, match="shift"):
        compose_pairs(digits, torch.tensor([0]), torch.tensor([1]), shift=5)
    with pytest.raises(ValueError, match="image_size"):
        compose_pairs(digits, torch.tensor([0]), torch.tensor([1]), image_size=32)
    with pytest.raises(ValueError, match="split"):
        load_multimnist("validation")
