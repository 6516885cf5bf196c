"""MovieLens 100K: a mirror with a missing or corrupt file is an error that names the file,
and loading writes nothing into the data folder."""

from __future__ import annotations

import hashlib

import pytest

from companion.data import movielens as ml
from companion.data.download import ChecksumError
from tests.data.test_movielens import FAKE, fake_sums  # noqa: F401  (fixture)


def _mirror(tmp_path, files: dict[str, bytes], sums: dict[str, bytes]):
    folder = tmp_path / "mirror" / "movielens" / "ml-100k"
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / "SHA256SUMS").write_text("".join(
        f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in sums.items()))
    return tmp_path / "mirror"


def test_a_file_missing_from_the_mirror_without_download(fake_sums, tmp_path):  # noqa: F811
    files = {n: d for n, d in FAKE.items() if n != "u.item"}
    mirror, root = _mirror(tmp_path, files, FAKE), tmp_path / "root"
    with pytest.raises(FileNotFoundError, match=r"u\.item"):
        ml.movielens_files(root=root, mirror=mirror, download=False)
    assert not (root / "movielens").exists() or not any((root / "movielens").rglob("*"))


def test_a_corrupt_mirror_file_fails_load_movielens_before_parsing(fake_sums, tmp_path):  # noqa: F811
    files = dict(FAKE, **{"u.data": b"1\t1\t5\t0\n"})  # bytes that do not match the checksum
    mirror, root = _mirror(tmp_path, files, FAKE), tmp_path / "root"
    with pytest.raises(ChecksumError, match=r"u\.data"):
        ml.load_movielens(root=root, mirror=mirror, download=False, progress=False)
    assert not (root / "movielens").exists() or not any((root / "movielens").rglob("*"))
