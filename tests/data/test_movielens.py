"""MovieLens 100K: per-file verification of the zip, atomic extraction, parsing, real counts."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest
import torch

from companion.data import movielens as ml
from companion.data.download import (
    ChecksumError,
    CorruptDataError,
    DownloadError,
    read_checksum_file,
)

DATA = Path(__file__).resolve().parents[2] / "data"
FAKE = {name: f"contents of {name}\n".encode() * 3 for name in ml._NEEDED}


@pytest.fixture
def fake_sums(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """Small stand-in files whose SHA-256 the module is told to expect."""
    sums = {n: hashlib.sha256(b).hexdigest() for n, b in FAKE.items()}
    monkeypatch.setattr(ml, "MOVIELENS_SHA256", sums)
    monkeypatch.setattr(ml, "MOVIELENS_FILES", {
        n: ml.RemoteFile(n, ml.SUBDIR, ml.MOVIELENS_URLS, sha256=s) for n, s in sums.items()})
    return FAKE


def _zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr("ml-100k/" + name, data)
        zf.writestr("ml-100k/u1.base", b"ignored")
    return path


@pytest.fixture
def serve_zip(tmp_path, http_server, monkeypatch):
    def serve(files: dict[str, bytes], *, truncate: bool = False) -> None:
        www = tmp_path / "www"
        www.mkdir(exist_ok=True)
        archive = _zip(www / "ml-100k.zip", files)
        if truncate:
            archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
        monkeypatch.setattr(ml, "MOVIELENS_URLS", (http_server(www) + "ml-100k.zip",))
    return serve


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_extracts_verified_files_and_leaves_no_zip(fake_sums, serve_zip, data_root,
                                                            no_mirror):
    serve_zip(fake_sums)
    paths = ml.movielens_files(root=data_root, progress=False)
    folder = data_root / "movielens" / "ml-100k"
    assert _listing(folder) == sorted(fake_sums)  # no zip, no temporary file, no u1.base
    assert {n: p.read_bytes() for n, p in paths.items()} == fake_sums


@pytest.mark.parametrize("damage", ["member", "truncate", "missing"])
def test_bad_archive_raises_and_writes_nothing(fake_sums, serve_zip, data_root, no_mirror,
                                               damage):
    files = dict(fake_sums)
    if damage == "member":
        files["u.item"] = b"a different u.item"
    if damage == "missing":
        del files["u.genre"]
    serve_zip(files, truncate=damage == "truncate")
    error = ChecksumError if damage == "member" else CorruptDataError
    with pytest.raises(error):
        ml.movielens_files(root=data_root, progress=False)
    assert _listing(data_root / "movielens" / "ml-100k") == []


def test_unreachable_archive_is_a_download_error(fake_sums, data_root, no_mirror, monkeypatch):
    monkeypatch.setattr(ml, "MOVIELENS_URLS", ("http://127.0.0.1:9/ml-100k.zip",))
    with pytest.raises(DownloadError, match=r"ml-100k\.zip"):
        ml.movielens_files(root=data_root, retries=1, timeout=2, progress=False)
    assert _listing(data_root / "movielens" / "ml-100k") == []


def test_missing_files_without_download(fake_sums, data_root, no_mirror):
    with pytest.raises(FileNotFoundError, match="download=True"):
        ml.movielens_files(root=data_root, download=False)


def test_a_corrupt_extracted_file_is_downloaded_again(fake_sums, serve_zip, data_root, no_mirror):
    serve_zip(fake_sums)
    paths = ml.movielens_files(root=data_root, progress=False)
    paths["u.data"].write_bytes(b"damaged")
    again = ml.movielens_files(root=data_root, progress=False)
    assert again["u.data"].read_bytes() == fake_sums["u.data"]


def test_mirror_is_used_in_place_and_a_bad_mirror_file_raises(fake_sums, tmp_path, data_root):
    mirror = tmp_path / "mirror"
    folder = mirror / "movielens" / "ml-100k"
    folder.mkdir(parents=True)
    for name, data in fake_sums.items():
        (folder / name).write_bytes(data)
    (folder / "SHA256SUMS").write_text("".join(
        f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in fake_sums.items()))
    paths = ml.movielens_files(root=data_root, mirror=mirror, download=False)
    assert paths["u.user"] == folder / "u.user"
    (folder / "u.user").write_bytes(b"tampered")
    with pytest.raises(ChecksumError):
        ml.movielens_files(root=data_root, mirror=mirror, download=False)


def test_unparseable_files_are_corrupt_data(fake_sums, serve_zip, data_root, no_mirror):
    serve_zip(fake_sums)  # right checksums (for this test), wrong contents
    with pytest.raises(CorruptDataError, match=r"genres|cannot be parsed"):
        ml.load_movielens(root=data_root, progress=False)


def test_the_card_lists_the_checksums_the_code_verifies():
    assert read_checksum_file(DATA / "movielens" / "SHA256SUMS") == ml.MOVIELENS_SHA256
    assert (DATA / "movielens" / "README.md").is_file()


# ---------------------------------------------------------------- the real files (local mirror)

@pytest.fixture(scope="module")
def real(mirror) -> ml.MovieLens100K:
    if not (mirror / "movielens" / "ml-100k" / "SHA256SUMS").is_file():
        pytest.skip("the mirror has no movielens/ml-100k")
    return ml.load_movielens(mirror=mirror, download=False, progress=False)


def test_mirror_sums_equal_ours(mirror):
    theirs = read_checksum_file(mirror / "movielens" / "ml-100k" / "SHA256SUMS")
    assert {k: theirs[k] for k in ml.MOVIELENS_SHA256} == ml.MOVIELENS_SHA256


def test_real_counts_and_shapes(real):
    assert (real.n_users, real.n_items, real.rating.numel()) == (943, 1682, 100_000)
    assert real.user_features.shape == (943, 4) and real.item_features.shape == (1682, 20)
    assert len(real.genres) == 19 and len(real.occupations) == 21
    assert set(real.rating.unique().tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert int(real.counts_per_user().min()) == 20  # GroupLens: every user rated >= 20
    assert torch.equal(torch.bincount(real.item, minlength=1682) > 0, torch.ones(1682, dtype=bool))
    limits = torch.tensor(ml.USER_CARDINALITIES)
    assert ((real.user_features >= 0) & (real.user_features < limits)).all()


def test_real_rows_parsed_by_hand(real):
    # u.data line 1: "196  242  3  881250949"
    assert (int(real.user[0]), int(real.item[0]), float(real.rating[0]),
            int(real.timestamp[0])) == (195, 241, 3.0, 881250949)
    # u.user line 1: "1|24|M|technician|85711" -> male, 18-24, technician, zip region 8
    assert real.user_features[0].tolist() == [0, 1, real.occupations.index("technician"), 8]
    assert int(real.age[0]) == 24 and real.zip_codes[0] == "85711"
    # u.item line 1: Toy Story, 01-Jan-1995, Animation|Children's|Comedy
    assert real.titles[0] == "Toy Story (1995)" and int(real.release_year[0]) == 1995
    genres = [real.genres[i] for i in (real.item_features[0, 1:] == 1).nonzero().flatten()]
    assert genres == ["Animation", "Children's", "Comedy"] and int(real.item_features[0, 0]) == 8
    assert int(real.release_year[266]) == 0 and int(real.item_features[266, 0]) == 0  # no date
    assert "Á" not in real.titles[0] and any("é" in t for t in real.titles)  # latin-1 decoded


def test_unknown_ids_name_the_argument(real):
    with pytest.raises(ValueError, match="items holds unknown movie"):
        real.features(0, [0, 1682])
    with pytest.raises(ValueError, match="user holds unknown user"):
        real.features(943, [0])
    with pytest.raises(ValueError, match="user"):
        real.ratings_of(-1)
    with pytest.raises(ValueError, match="items must be a 1-d"):
        real.features(0, torch.tensor([0.5]))
