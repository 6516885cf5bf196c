"""The checksums documented under data/ are exactly the ones the loaders verify."""

from __future__ import annotations

from pathlib import Path

import pytest

from companion.data.download import read_checksum_file
from companion.data.mnist import MNIST_FILES
from companion.data.omniglot import OMNIGLOT_FILES, VINYALS_FILES

DATA = Path(__file__).resolve().parents[1] / "data"


def _registry(files, algorithm: str) -> dict[str, str]:
    return {f.name: f.digests[algorithm] for f in files if algorithm in f.digests}


def test_omniglot_cards_match_the_code():
    assert read_checksum_file(DATA / "omniglot" / "MD5SUMS") == _registry(
        OMNIGLOT_FILES.values(), "md5")
    assert read_checksum_file(DATA / "omniglot" / "splits" / "vinyals" / "SHA256SUMS") == (
        _registry(VINYALS_FILES.values(), "sha256"))


def test_mnist_cards_match_the_code():
    files = [f for pair in MNIST_FILES.values() for f in pair]
    assert read_checksum_file(DATA / "mnist" / "MD5SUMS") == _registry(files, "md5")
    assert read_checksum_file(DATA / "mnist" / "SHA256SUMS") == _registry(files, "sha256")


@pytest.mark.parametrize("folder", ["omniglot/splits/vinyals", "mnist"])
def test_mirror_holds_the_published_bytes(mirror, folder):
    """Where the mirror's files are byte-identical to upstream, its sums equal ours."""
    ours = read_checksum_file(DATA / folder / "SHA256SUMS")
    theirs = read_checksum_file(mirror / folder / "SHA256SUMS")
    assert {k: theirs[k] for k in ours} == ours


def test_every_data_folder_has_a_card():
    assert sorted(p.name for p in DATA.iterdir() if p.is_dir()) == sorted(
        ["omniglot", "mnist", "multimnist", "digits", "shifted_mnist", "movielens"])
    for folder in ("omniglot", "mnist", "multimnist", "digits", "shifted_mnist", "movielens"):
        assert (DATA / folder / "README.md").is_file()
