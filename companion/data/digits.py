"""scikit-learn's 8x8 handwritten digits, upsampled to MNIST's 28x28 format.

The data are the test part of the UCI "Optical Recognition of Handwritten Digits" set
(Alpaydin & Kaynak, 1998; 1797 images by 13 writers), shipped inside scikit-learn: 32x32
bitmaps whose 4x4 blocks were counted, giving 8x8 images with values 0..16. In the
transfer-learning chapter they are a second real domain of the same ten classes as MNIST:
same task, different writers, scanning and preprocessing.

To share MNIST's format the images are resized (bilinear) to ``image_size - 2 * padding``
pixels, padded with background to ``image_size`` (MNIST fits its digits in a 20x20 box inside
28x28), and each image is scaled so that its brightest pixel is 255 (ink 255, background 0).

Chapter: Transfer learning (domain adaptation).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from companion._checks import check_non_negative_int, check_positive_int
from companion.data.dataset import ImageClassDataset

__all__ = ["DIGITS_SIZE", "load_digits"]

DIGITS_SIZE = 1797  # images in scikit-learn's copy


def load_digits(*, image_size: int = 28, padding: int = 4) -> ImageClassDataset:
    """The 1797 digits as ``[1797, 1, image_size, image_size]`` uint8, labels 0-9.

    Args:
        image_size: output side (> 0; 28 as MNIST).
        padding: background border on each side (>= 0, ``2 * padding < image_size``); 4 gives
            MNIST's 20x20 digit box.

    Raises:
        ImportError: scikit-learn is not installed (it is a dependency of this package).
    """
    check_positive_int("image_size", image_size)
    check_non_negative_int("padding", padding)
    inner = image_size - 2 * padding
    if inner < 1:
        raise ValueError(f"padding={padding} leaves no room in image_size={image_size}")
    from sklearn.datasets import load_digits as sklearn_digits  # slow import: only when used

    raw = sklearn_digits()
    x = torch.from_numpy(raw.images).float()[:, None] / 16  # [1797, 1, 8, 8] in [0, 1]
    x = F.interpolate(x, size=(inner, inner), mode="bilinear", align_corners=False)
    x = F.pad(x, (padding, padding, padding, padding))  # [1797, 1, size, size]
    peak = x.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)  # [1797, 1, 1, 1]
    images = (x / peak * 255).round().clamp(0, 255).to(torch.uint8)
    return ImageClassDataset(
        images=images,
        labels=torch.from_numpy(raw.target.astype("int64")),
        class_names=tuple(str(d) for d in range(10)),
        name="digits",
    )
