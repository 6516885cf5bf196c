"""MNIST from IDX files: the real test set from the mirror, and corrupt files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from companion.data import CorruptDataError, load_mnist
from companion.data.mnist import read_idx


def test_real_test_set(mirror, data_root):
    ds = load_mnist("test", mirror=mirror, progress=False)
    assert ds.images.shape == (10_000, 1, 28, 28)
    # per-class counts documented in the mirror's README
    assert ds.class_counts().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert ds.images.max() == 255 and ds.images.float().mean() < 50  # ink bright


def _idx(path: Path, magic: int, dims: list[int], payload: bytes) -> Path:
    header = np.array([magic, *dims], dtype=">i4").tobytes()
    path.write_bytes(gzip.compress(header + payload))
    return path


def test_read_idx_roundtrip(tmp_path):
    f = _idx(tmp_path / "x.gz", 2051, [2, 2, 3], bytes(range(12)))
    assert read_idx(f, 3).tolist() == [[[0, 1, 2], [3, 4, 5]], [[6, 7, 8], [9, 10, 11]]]


@pytest.mark.parametrize(("magic", "dims", "payload", "message"), [
    (2049, [2, 2, 3], bytes(12), "magic"),
    (2051, [2, 2, 3], bytes(11), "payload"),
])
def test_read_idx_rejects_bad_headers(tmp_path, magic, dims, payload, message):
    with pytest.raises(CorruptDataError, match=message):
        read_idx(_idx(tmp_path / "x.gz", magic, dims, payload), 3)


def test_read_idx_rejects_truncated_gzip(tmp_path):
    good = _idx(tmp_path / "x.gz", 2051, [1, 28, 28], bytes(784))
    good.write_bytes(good.read_bytes()[:-10])
    with pytest.raises(CorruptDataError, match="gzip"):
        read_idx(good, 3)


def test_bad_split_and_ndim(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_mnist("validation")
    with pytest.raises(ValueError, match="ndim"):
        read_idx(tmp_path / "x.gz", 2)
