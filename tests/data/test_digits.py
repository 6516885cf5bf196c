"""scikit-learn's digits in MNIST's format."""

from __future__ import annotations

import pytest
import torch

from companion.data import load_digits

sklearn = pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def test_size_classes_shape_and_range(digits):
    assert len(digits) == 1797 and digits.num_classes == 10
    assert digits.images.shape == (1797, 1, 28, 28) and digits.images.dtype == torch.uint8
    assert digits.class_counts().tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    peak = digits.images.flatten(1).amax(1)
    assert (peak == 255).all()  # every image spans MNIST's 0..255 range
    assert digits.images.flatten(1).amin(1).eq(0).all()
    assert digits.images[:, :, :4].max() == 0 and digits.images[:, :, -4:].max() == 0  # border


def test_agrees_with_the_8x8_source(digits):
    """Downsampling back to 8x8 (area mean over the 20x20 box) is monotone in the original
    intensities: strongly correlated with scikit-learn's values."""
    raw = torch.from_numpy(sklearn.datasets.load_digits().images).float()  # [1797, 8, 8]
    box = digits.images[:, 0, 4:24, 4:24].float()[:, None]  # [1797, 1, 20, 20]
    back = torch.nn.functional.adaptive_avg_pool2d(box, 8)[:, 0]  # [1797, 8, 8]
    corr = torch.corrcoef(torch.stack([back.flatten(), raw.flatten()]))[0, 1]
    assert corr > 0.95
    assert digits.labels.tolist() == sklearn.datasets.load_digits().target.tolist()


def test_other_sizes_and_bad_arguments():
    small = load_digits(image_size=16, padding=0)
    assert small.images.shape == (1797, 1, 16, 16)
    with pytest.raises(ValueError, match="padding"):
        load_digits(image_size=8, padding=4)
    with pytest.raises(ValueError, match="image_size"):
        load_digits(image_size=0)
