"""MNIST (LeCun et al., 1998) from the original gzip-compressed IDX files.

Used by the transfer-learning chapters as a second, small, real image set. The official test
set is also what the project's local mirror holds; the training set is downloaded on demand.

Chapter: Transfer learning. Reference: :cite:t:`lecun1998gradient`.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from companion.data.dataset import ImageClassDataset
from companion.data.download import CorruptDataError, RemoteFile, fetch

__all__ = ["MNIST_FILES", "MNIST_SIZES", "load_mnist", "read_idx"]

_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")


def _remote(name: str, md5: str, sha256: str | None = None) -> RemoteFile:
    return RemoteFile(name, "mnist", tuple(base + name for base in _URLS), md5=md5, sha256=sha256)


MNIST_FILES = {
    "train": (
        _remote("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        _remote("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    ),
    "test": (
        _remote("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3",
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        _remote("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c",
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    ),
}
# images per split (LeCun et al.; data/mnist/README.md), checked after decoding
MNIST_SIZES = {"train": 60_000, "test": 10_000}
_MAGIC = {3: 2051, 1: 2049}  # number of dimensions -> IDX magic for unsigned bytes


def read_idx(path: str | os.PathLike[str], ndim: int) -> np.ndarray:
    """Read a gzip-compressed IDX file of unsigned bytes with ``ndim`` dimensions (1 or 3).

    Raises:
        CorruptDataError: bad gzip stream, wrong magic number or a size that disagrees
            with the header.
    """
    if ndim not in _MAGIC:
        raise ValueError(f"ndim must be 1 (labels) or 3 (images), got {ndim}")
    try:
        raw = gzip.decompress(Path(path).read_bytes())
    except (OSError, EOFError, zlib.error) as err:
        raise CorruptDataError(f"{path} is not a valid gzip file ({err})") from err
    header = 4 * (1 + ndim)
    if len(raw) < header:
        raise CorruptDataError(f"{path}: {len(raw)} bytes is shorter than the IDX header")
    magic, *dims = np.frombuffer(raw, dtype=">i4", count=1 + ndim)
    if magic != _MAGIC[ndim]:
        raise CorruptDataError(f"{path}: magic number {magic}, expected {_MAGIC[ndim]}")
    if len(raw) != header + int(np.prod(dims)):
        raise CorruptDataError(f"{path}: header says {dims}, but the payload has "
                               f"{len(raw) - header} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_mnist(
    split: str = "test",
    *,
    root: str | os.PathLike[str] | None = None,
    mirror: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: bool = True,
) -> ImageClassDataset:
    """Load MNIST ``"train"`` (60,000) or ``"test"`` (10,000) as ``[N, 1, 28, 28]`` uint8.

    Ink is 255 and background 0, as in Omniglot after :func:`load_omniglot`.
    """
    if not isinstance(split, str) or split not in MNIST_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    images_file, labels_file = (
        fetch(f, root=root, mirror=mirror, download_missing=download, progress=progress)
        for f in MNIST_FILES[split]
    )
    images, labels = read_idx(images_file, 3), read_idx(labels_file, 1)
    if len(images) != len(labels) or labels.max(initial=0) > 9:
        raise CorruptDataError(f"MNIST {split}: {len(images)} images but {len(labels)} labels "
                               "(or a label outside 0-9)")
    if images.shape[1:] != (28, 28) or len(images) != MNIST_SIZES[split]:
        raise CorruptDataError(
            f"{images_file} holds {len(images)} images of {images.shape[1]}x{images.shape[2]} "
            f"pixels, but the published MNIST {split} set has {MNIST_SIZES[split]} of 28x28: it "
            "is not the right file (check the mirror, or delete it to download it again)")
    return ImageClassDataset(
        images=torch.from_numpy(images.copy()).unsqueeze(1),
        labels=torch.from_numpy(labels.astype(np.int64)),
        class_names=tuple(str(d) for d in range(10)),
        name=f"mnist/{split}",
    )
