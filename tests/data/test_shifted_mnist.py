"""The colour/texture-shifted MNIST: deterministic, MNIST-M's blend, MNIST's labels."""

from __future__ import annotations

import pytest
import torch

from companion.data import ImageClassDataset, load_mnist, load_shifted_mnist, shift_colours
from companion.data.shifted_mnist import textures


def _digits(n: int = 12) -> ImageClassDataset:
    images = torch.zeros(n, 1, 28, 28, dtype=torch.uint8)
    images[:, 0, 8:20, 12:16] = 255  # a bar as "ink"
    return ImageClassDataset(images, torch.arange(n) % 10, tuple(map(str, range(10))), "bars")


def test_deterministic_for_a_seed_and_different_across_seeds():
    a, b = shift_colours(_digits(), seed=5), shift_colours(_digits(), seed=5)
    assert torch.equal(a.images, b.images)
    assert not torch.equal(a.images, shift_colours(_digits(), seed=6).images)
    assert a.images.shape == (12, 3, 28, 28) and a.images.dtype == torch.uint8
    assert torch.equal(a.labels, _digits().labels) and a.name == "shifted_bars"


def test_independent_of_the_chunk_size():
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    torch.testing.assert_close(textures(10, 28, generator=g1, chunk=3),
                               textures(10, 28, generator=g2, chunk=1024))


def test_blend_is_the_absolute_difference_with_the_digit():
    ds = _digits(4)
    out = shift_colours(ds, seed=1).images.float() / 255  # [4, 3, 28, 28]
    tex = textures(4, 28, generator=torch.Generator().manual_seed(1))
    background = ds.images[:, 0] == 0  # [4, 28, 28]
    ink = ~background
    torch.testing.assert_close(out.permute(1, 0, 2, 3)[:, background],
                               tex.permute(1, 0, 2, 3)[:, background], atol=1 / 255, rtol=0)
    torch.testing.assert_close(out.permute(1, 0, 2, 3)[:, ink],
                               1 - tex.permute(1, 0, 2, 3)[:, ink], atol=1 / 255, rtol=0)


def test_textures_are_coloured_and_use_the_whole_range():
    tex = textures(20, 28, generator=torch.Generator().manual_seed(0))
    assert tex.min() >= 0 and tex.max() <= 1
    assert (tex.flatten(1).amax(1) == 1).all() and (tex.flatten(1).amin(1) == 0).all()
    channel_means = tex.mean(dim=(2, 3))  # [20, 3]
    assert (channel_means.std(dim=1) > 0.01).float().mean() > 0.5  # not grey


def test_does_not_touch_the_global_random_state():
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    shift_colours(_digits(), seed=0)
    assert torch.rand(1) == expected


def test_bad_input():
    with pytest.raises(ValueError, match="seed"):
        shift_colours(_digits(), seed=-1)
    rgb = ImageClassDataset(torch.zeros(2, 3, 28, 28, dtype=torch.uint8), torch.tensor([0, 1]),
                            ("a", "b"))
    with pytest.raises(ValueError, match="grey"):
        shift_colours(rgb)


def test_from_the_mnist_mirror_is_deterministic(mirror, monkeypatch):
    mnist = load_mnist("test", mirror=mirror, download=False, progress=False)
    head = ImageClassDataset(mnist.images[:300], mnist.labels[:300], mnist.class_names,
                             "mnist/test")
    a, b = shift_colours(head, seed=0), shift_colours(head, seed=0)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, mnist.labels[:300])
    # the loader is load_mnist followed by shift_colours (patched to the 300-image head,
    # as the full set takes seconds)
    calls = []
    monkeypatch.setattr("companion.data.shifted_mnist.load_mnist",
                        lambda split, **kwargs: calls.append((split, kwargs)) or head)
    loaded = load_shifted_mnist("test", seed=0, mirror=mirror, download=False, progress=False)
    assert torch.equal(loaded.images, a.images) and loaded.name == "shifted_mnist/test"
    assert calls == [("test", {"root": None, "mirror": mirror, "download": False,
                               "progress": False})]
