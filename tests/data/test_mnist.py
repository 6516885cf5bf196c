"""MNIST from IDX files: the real test set from the mirror, and corrupt files."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from companion.data import ChecksumError, CorruptDataError, load_mnist
from companion.data import mnist as mnist_module
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
    with pytest.raises(ValueError, match="split"):
        load_mnist(["test"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ndim"):
        read_idx(tmp_path / "x.gz", 2)


def _fake_mirror(tmp_path: Path, n: int, side: int = 28) -> Path:
    """A mirror whose test files hold ``n`` images and whose SHA256SUMS matches them."""
    folder = tmp_path / "mirror" / "mnist"
    folder.mkdir(parents=True)
    images = _idx(folder / "t10k-images-idx3-ubyte.gz", 2051, [n, side, side],
                  bytes(n * side * side))
    labels = _idx(folder / "t10k-labels-idx1-ubyte.gz", 2049, [n], bytes(range(n)))
    (folder / "SHA256SUMS").write_text(
        "".join(f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.name}\n"
                for f in (images, labels)))
    return folder.parent


def _unofficial(monkeypatch: pytest.MonkeyPatch, **changes: object) -> None:
    """Treat the fake files as rebuilt mirror copies (not held to the official checksums)."""
    files = {split: tuple(dataclasses.replace(f, **changes) for f in pair)
             for split, pair in mnist_module.MNIST_FILES.items()}
    monkeypatch.setattr(mnist_module, "MNIST_FILES", files)


def test_a_mirror_with_the_wrong_number_of_images_is_refused(tmp_path, data_root, monkeypatch):
    mirror = _fake_mirror(tmp_path, 10)
    _unofficial(monkeypatch, exact_mirror=False)
    with pytest.raises(CorruptDataError, match="holds 10 images of 28x28 pixels, but the "
                                               "published MNIST test set has 10000"):
        load_mnist("test", mirror=mirror, progress=False)
    monkeypatch.setattr(mnist_module, "MNIST_SIZES", {"train": 60_000, "test": 10})
    assert load_mnist("test", mirror=mirror, progress=False).images.shape == (10, 1, 28, 28)


def test_a_mirror_with_images_of_another_size_is_refused(tmp_path, data_root, monkeypatch):
    mirror = _fake_mirror(tmp_path, 10, side=8)
    _unofficial(monkeypatch, exact_mirror=False)
    monkeypatch.setattr(mnist_module, "MNIST_SIZES", {"train": 60_000, "test": 10})
    with pytest.raises(CorruptDataError, match="10 images of 8x8 pixels"):
        load_mnist("test", mirror=mirror, progress=False)


def test_mirror_files_are_held_to_the_official_checksums(tmp_path, data_root):
    """MNIST files are byte-identical with upstream: a mirror whose list matches its (wrong)
    files is refused because the official checksums differ."""
    mirror = _fake_mirror(tmp_path, 10)
    with pytest.raises(ChecksumError, match=r"matches its own .*, but not the published"):
        load_mnist("test", mirror=mirror, progress=False)


def test_md5_only_files_are_checked_with_md5_in_a_mirror(tmp_path, data_root, monkeypatch):
    mirror = _fake_mirror(tmp_path, 10)
    _unofficial(monkeypatch, sha256=None)  # like the training files: only an md5 is published
    with pytest.raises(ChecksumError, match="published MD5"):
        load_mnist("test", mirror=mirror, progress=False)
