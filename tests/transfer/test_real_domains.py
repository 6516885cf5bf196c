"""The library on the chapter's real domains: MNIST -> digits and MNIST -> shifted MNIST."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion.data import ImageClassDataset, load_digits, load_mnist, shift_colours
from companion.models import Conv4
from companion.transfer import METHODS, DomainAdaptation, DomainPairSampler, proxy_a_distance

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def mnist_head(mirror) -> ImageClassDataset:
    mnist = load_mnist("test", mirror=mirror, download=False, progress=False)
    return ImageClassDataset(mnist.images[:500], mnist.labels[:500], mnist.class_names, "mnist")


@pytest.fixture(scope="module")
def digits() -> ImageClassDataset:
    return load_digits()


pytestmark = pytest.mark.usefixtures("torch_seed_0")  # module initialisation


@pytest.mark.parametrize("method", METHODS)
def test_one_step_of_every_method_from_mnist_to_digits(mnist_head, digits, method):
    sampler = DomainPairSampler.from_datasets(mnist_head, digits, seed=0)
    da = DomainAdaptation(Conv4(hidden_channels=8), nn.Linear(8, 10), feature_dim=8,
                          method=method)
    loss, metrics = da.training_loss(sampler.sample_batch(16))
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(v) for v in metrics.values())
    assert set(da.evaluation_metrics(sampler.sample_target(32))) == {"accuracy", "loss"}


def test_mnist_to_shifted_mnist_with_three_channels(mnist_head):
    shifted = shift_colours(mnist_head, seed=0)
    sampler = DomainPairSampler.from_datasets(mnist_head, shifted, channels=3, seed=0)
    source, target = sampler.sample_batch(8)
    assert source.x.shape == target.x.shape == (8, 3, 28, 28)
    torch.testing.assert_close(source.x[:, 0], source.x[:, 2])  # grey, repeated
    da = DomainAdaptation(Conv4(3, 8), nn.Linear(8, 10), feature_dim=8, method="dann")
    da.training_loss((source, target))[0].backward()


def test_the_raw_domains_are_far_apart_by_the_proxy_a_distance(mnist_head, digits):
    """Pixels tell MNIST from shifted MNIST perfectly and MNIST from digits nearly so."""
    shifted = shift_colours(mnist_head, seed=0)
    flat = mnist_head.images.flatten(1).float() / 255  # [500, 784]
    gen = torch.Generator().manual_seed(0)
    d_shift = proxy_a_distance(flat, shifted.images.float().mean(1).flatten(1) / 255,
                               generator=gen)
    d_digits = proxy_a_distance(flat, digits.images[:500].flatten(1).float() / 255,
                                generator=gen)
    assert d_shift > 1.8 and d_digits > 1.5
