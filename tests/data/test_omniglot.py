"""Omniglot: both splits' sizes, rotations, the decoded cache, corrupt archives, downloads."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from companion.data import CorruptDataError, load_omniglot
from companion.data import omniglot as omniglot_module
from companion.data.download import file_digest

# ---------------------------------------------------------------- a small synthetic Omniglot


def _png(seed: int, size: int = 35) -> bytes:
    """A 1-bit image like Omniglot's: white paper (1) with black strokes (0)."""
    rng = np.random.default_rng(seed)
    paper = rng.random((size, size)) > 0.2
    buf = io.BytesIO()
    Image.fromarray(paper).convert("1").save(buf, format="PNG")
    return buf.getvalue()


def _archive(path: Path, top: str, alphabets: dict[str, int], seed: int, drawers: int = 20) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for a, (alphabet, n_chars) in enumerate(sorted(alphabets.items())):
            for c in range(1, n_chars + 1):
                for d in range(1, drawers + 1):
                    name = f"{top}/{alphabet}/character{c:02d}/{a:02d}{c:02d}_{d:02d}.png"
                    zf.writestr(name, _png(seed * 100_000 + a * 1000 + c * 20 + d))


def _write_sums(folder: Path) -> None:
    lines = [f"{file_digest(f)}  {f.name}" for f in sorted(folder.iterdir())
             if f.is_file() and f.name != "SHA256SUMS"]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")


@pytest.fixture
def fake_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A mirror with a 2-alphabet background and a 1-alphabet evaluation set, and a split.

    Its split file is not the published one, so the loader is told to treat it as a rebuilt
    file (checked against the mirror's list only), and to expect the small archives' counts."""
    root = tmp_path / "mirror"
    folder = root / "omniglot"
    folder.mkdir(parents=True)
    _archive(folder / "images_background.zip", "images_background", {"Alpha": 2, "Beta": 1}, 1)
    _archive(folder / "images_evaluation.zip", "images_evaluation", {"Gamma": 2}, 2)
    _write_sums(folder)
    splits = folder / "splits" / "vinyals"
    splits.mkdir(parents=True)
    (splits / "test.txt").write_text("Gamma/character02/rot000\nGamma/character02/rot090\n"
                                     "Alpha/character01/rot270\n")
    _write_sums(splits)
    files = dict(omniglot_module.VINYALS_FILES)
    files["test"] = dataclasses.replace(files["test"], sha256=None, md5="0" * 32,
                                        exact_mirror=False)
    monkeypatch.setattr(omniglot_module, "VINYALS_FILES", files)
    monkeypatch.setattr(omniglot_module, "OMNIGLOT_COUNTS",
                        {"background": (2, 3, 60), "evaluation": (1, 2, 40)})
    return root


def _load(mirror: Path, split: str = "background", **kwargs: object):
    return load_omniglot(split, mirror=mirror, progress=False, **kwargs)


def test_synthetic_background_and_evaluation(fake_mirror, data_root):
    bg, ev = _load(fake_mirror), _load(fake_mirror, "evaluation", image_size=16)
    assert bg.class_names == ("Alpha/character01/rot000", "Alpha/character02/rot000",
                              "Beta/character01/rot000")
    assert bg.images.shape == (60, 1, 28, 28) and bg.images.dtype == torch.uint8
    assert bg.class_counts().tolist() == [20, 20, 20]
    assert ev.images.shape == (40, 1, 16, 16) and ev.num_classes == 2
    # ink (black strokes, 20% of pixels) becomes bright: the mean is well below mid-grey
    assert 20 < bg.images.float().mean() < 100


def test_rotations_are_counter_clockwise_quarter_turns(fake_mirror, data_root):
    rotated = _load(fake_mirror, rotations=(0, 90, 180, 270))
    assert rotated.num_classes == 12
    images = rotated.images.reshape(12, 20, 28, 28)
    for k in range(4):  # classes are ordered character-major: char0 rot0, char0 rot90, ...
        torch.testing.assert_close(images[k], torch.rot90(images[0], k, dims=(-2, -1)))
    # counter-clockwise: the top-right pixel moves to the top-left
    x = torch.zeros(3, 3)
    x[0, 2] = 1
    assert torch.rot90(x, 1, dims=(-2, -1))[0, 0] == 1


def test_vinyals_split_file_defines_classes_and_rotations(fake_mirror, data_root):
    test = _load(fake_mirror, "test")
    assert test.class_names == ("Gamma/character02/rot000", "Gamma/character02/rot090",
                                "Alpha/character01/rot270")
    images = test.images.reshape(3, 20, 28, 28)
    torch.testing.assert_close(images[1], torch.rot90(images[0], 1, dims=(-2, -1)))
    alpha = _load(fake_mirror).images.reshape(3, 20, 28, 28)[0]
    torch.testing.assert_close(images[2], torch.rot90(alpha, 3, dims=(-2, -1)))


def test_cache_is_reused(fake_mirror, data_root, monkeypatch):
    first = _load(fake_mirror)
    assert list((data_root / "omniglot" / "cache").iterdir())

    def must_not_decode(*args: object) -> None:
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(omniglot_module, "_decode_archive", must_not_decode)
    torch.testing.assert_close(_load(fake_mirror).images, first.images)


def test_cache_is_invalidated_when_the_source_changes(fake_mirror, data_root, monkeypatch):
    before = _load(fake_mirror)
    folder = fake_mirror / "omniglot"
    _archive(folder / "images_background.zip", "images_background", {"Alpha": 2, "Beta": 1}, 7)
    _write_sums(folder)
    calls = []
    real = omniglot_module._decode_archive
    monkeypatch.setattr(omniglot_module, "_decode_archive",
                        lambda *a: calls.append(a) or real(*a))
    after = _load(fake_mirror)
    assert len(calls) == 2  # both archives decoded again
    assert not torch.equal(before.images, after.images)


def test_a_different_image_size_has_its_own_cache(fake_mirror, data_root):
    _load(fake_mirror, image_size=28)
    _load(fake_mirror, image_size=20)
    names = sorted(p.name for p in (data_root / "omniglot" / "cache").iterdir())
    assert names == ["omniglot-20px.npz", "omniglot-28px.npz"]


def test_unreadable_cache_is_rebuilt(fake_mirror, data_root):
    first = _load(fake_mirror)
    cache = data_root / "omniglot" / "cache" / "omniglot-28px.npz"
    cache.write_bytes(b"garbage")
    torch.testing.assert_close(_load(fake_mirror).images, first.images)


def test_truncated_archive_raises_a_clear_error(fake_mirror, data_root):
    folder = fake_mirror / "omniglot"
    archive = folder / "images_background.zip"
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    _write_sums(folder)  # the checksum list matches the damaged file, so only decoding fails
    with pytest.raises(CorruptDataError, match="truncated"):
        _load(fake_mirror)


def test_character_with_missing_drawings_raises(fake_mirror, data_root):
    folder = fake_mirror / "omniglot"
    _archive(folder / "images_background.zip", "images_background", {"Alpha": 1}, 3, drawers=19)
    _write_sums(folder)
    with pytest.raises(CorruptDataError, match="19 images"):
        _load(fake_mirror)


def test_checksum_mismatch_in_mirror_raises(fake_mirror, data_root):
    from companion.data import ChecksumError

    (fake_mirror / "omniglot" / "images_evaluation.zip").write_bytes(b"not the listed bytes")
    with pytest.raises(ChecksumError, match=r"images_evaluation\.zip"):
        _load(fake_mirror)


def test_split_file_with_unknown_character_raises(fake_mirror, data_root):
    splits = fake_mirror / "omniglot" / "splits" / "vinyals"
    (splits / "test.txt").write_text("Delta/character01/rot000\n")
    _write_sums(splits)
    with pytest.raises(CorruptDataError, match="unknown character"):
        _load(fake_mirror, "test")


def test_the_wrong_archive_under_the_right_name_is_caught_by_its_counts(fake_mirror, data_root):
    """A mirror whose SHA256SUMS lists a smaller archive under the full archive's name (as
    images_background_small1.zip copied to images_background.zip would be) loads nothing."""
    folder = fake_mirror / "omniglot"
    _archive(folder / "images_background.zip", "images_background", {"Alpha": 2}, 1)
    _write_sums(folder)
    with pytest.raises(CorruptDataError, match=r"images_background.zip holds 1 alphabets, 2 "
                                               r"characters and 40 images, but the published "
                                               r"background set has 2, 3 and 60"):
        _load(fake_mirror)
    assert not (data_root / "omniglot" / "cache").exists()  # nothing wrong was cached


def test_a_cache_with_the_wrong_counts_is_refused(fake_mirror, data_root, monkeypatch):
    _load(fake_mirror)  # caches the 3 + 2 characters
    monkeypatch.setattr(omniglot_module, "OMNIGLOT_COUNTS",
                        {"background": (2, 3, 60), "evaluation": (20, 659, 13_180)})
    with pytest.raises(CorruptDataError, match=r"images_evaluation\.zip holds 1 alphabets"):
        _load(fake_mirror)


def test_published_counts_are_the_documented_ones():
    assert omniglot_module.OMNIGLOT_COUNTS == {"background": (30, 964, 19_280),
                                               "evaluation": (20, 659, 13_180)}


def test_mirror_archives_are_not_held_to_the_upstream_md5():
    """The mirror's archives are rebuilt (other zip metadata, same PNGs): only the counts and
    the mirror's own list can check them. Byte-identical files are held to the official sums."""
    assert all(not f.exact_mirror for f in omniglot_module.OMNIGLOT_FILES.values())
    assert all(f.exact_mirror for f in omniglot_module.VINYALS_FILES.values())


def test_a_read_only_cache_folder_warns_and_loads_from_memory(fake_mirror, data_root):
    blocked = data_root / "omniglot" / "cache"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the cache folder should be")  # writing fails, even as root
    with pytest.warns(UserWarning, match="could not write the decoded Omniglot cache"):
        ds = _load(fake_mirror)
    assert ds.num_classes == 3 and ds.images.shape == (60, 1, 28, 28)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="permissions do not stop root")
def test_a_read_only_data_folder_warns_and_loads_from_memory(fake_mirror, data_root):
    data_root.chmod(0o555)
    try:
        with pytest.warns(UserWarning, match="could not write the decoded Omniglot cache"):
            ds = _load(fake_mirror)
    finally:
        data_root.chmod(0o755)
    assert ds.num_classes == 3


def test_a_binary_split_file_is_corrupt_data(fake_mirror, data_root):
    splits = fake_mirror / "omniglot" / "splits" / "vinyals"
    (splits / "test.txt").write_bytes(bytes(range(128, 256)))
    _write_sums(splits)
    with pytest.raises(CorruptDataError, match="not a text list"):
        _load(fake_mirror, "test")


def test_a_binary_checksum_list_is_corrupt_data(fake_mirror, data_root):
    (fake_mirror / "omniglot" / "SHA256SUMS").write_bytes(b"\xff\xfe\x00binary" * 10)
    with pytest.raises(CorruptDataError, match="not a text checksum list"):
        _load(fake_mirror)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"split": "training"}, "split must be one of"),
    ({"image_size": 4}, "image_size"),
    ({"image_size": 28.0}, "image_size"),
    ({"rotations": (45,)}, "rotations"),
    ({"rotations": (0, 0)}, "rotations"),
    ({"rotations": ()}, "rotations"),
    ({"split": "train", "rotations": (0,)}, "fixed by the Vinyals split"),
    ({"rotations": 90}, "rotations must be a sequence"),
    ({"rotations": "090"}, "rotations must be a sequence"),
    ({"split": ["test"]}, "split must be one of"),
])
def test_bad_arguments(fake_mirror, data_root, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_omniglot(**{"split": "background", **kwargs}, mirror=fake_mirror, progress=False)


# ---------------------------------------------------------------- the real data (local mirror)

SIZES = {"background": 964, "evaluation": 659, "train": 4112, "val": 688, "trainval": 4800,
         "test": 1692}


@pytest.fixture(scope="module")
def real(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("data")
    return {s: load_omniglot(s, root=root, mirror=mirror, progress=False) for s in SIZES}


def _characters(ds) -> set[str]:
    return {name.rsplit("/", 1)[0] for name in ds.class_names}


@pytest.mark.parametrize("split", list(SIZES))
def test_real_split_sizes(real, split):
    ds = real[split]
    assert ds.num_classes == SIZES[split]
    assert ds.images.shape == (20 * SIZES[split], 1, 28, 28)
    assert (ds.class_counts() == 20).all()


def test_real_lake_split_has_1623_characters_and_no_rotations(real):
    bg, ev = _characters(real["background"]), _characters(real["evaluation"])
    assert len(bg) == 964 and len(ev) == 659 and not bg & ev
    assert all(n.endswith("/rot000") for n in real["background"].class_names)


def test_real_vinyals_split_is_disjoint_and_rotated(real):
    train, val, test = (_characters(real[s]) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (1028, 172, 423)
    assert not train & val and not train & test and not val & test
    assert train | val == _characters(real["trainval"])
    assert train | val | test == _characters(real["background"]) | _characters(real["evaluation"])
    for split in ("train", "val", "trainval", "test"):
        rots = {n.rsplit("/", 1)[1] for n in real[split].class_names}
        assert rots == {"rot000", "rot090", "rot180", "rot270"}


def test_real_rotated_classes_are_rotated_images(real):
    test = real["test"]
    index = {name: i for i, name in enumerate(test.class_names)}
    name = test.class_names[0].rsplit("/", 1)[0]
    images = test.images.reshape(-1, 20, 28, 28)
    upright = images[index[f"{name}/rot000"]]
    for k, rot in enumerate(("rot000", "rot090", "rot180", "rot270")):
        torch.testing.assert_close(images[index[f"{name}/{rot}"]],
                                   torch.rot90(upright, k, dims=(-2, -1)))


def test_real_images_have_bright_ink_on_dark_background(real):
    x = real["background"].images.float()
    assert x.amax() == 255 and x.amin() == 0
    assert x.mean() < 40  # strokes cover a small part of each image


def test_real_download_path_against_local_http_server(mirror, http_server, data_root,
                                                      no_mirror, monkeypatch):
    """The path a reader takes: no mirror, download from a server, verify, decode, cache.

    The server serves the mirror's files. Their archives were rebuilt from the repository's
    PNGs (see the mirror's README), so their md5 differs from upstream; the test swaps in the
    served bytes' md5 and keeps everything else real.
    """
    base = http_server(mirror / "omniglot")
    files = {
        split: dataclasses.replace(remote, urls=(base + remote.name,),
                                   md5=hashlib.md5((mirror / "omniglot" / remote.name)
                                                   .read_bytes()).hexdigest())
        for split, remote in omniglot_module.OMNIGLOT_FILES.items()
    }
    vinyals = {split: dataclasses.replace(remote, urls=(f"{base}splits/vinyals/{remote.name}",))
               for split, remote in omniglot_module.VINYALS_FILES.items()}
    monkeypatch.setattr(omniglot_module, "OMNIGLOT_FILES", files)
    monkeypatch.setattr(omniglot_module, "VINYALS_FILES", vinyals)
    test = load_omniglot("test", progress=False)
    assert test.num_classes == 1692
    downloaded = sorted(p.name for p in (data_root / "omniglot").rglob("*") if p.is_file())
    assert downloaded == ["images_background.zip", "images_evaluation.zip",
                          "omniglot-28px.npz", "test.txt"]


def test_arguments_are_checked_before_any_file_is_needed(data_root, no_mirror):
    """A bad argument is reported as such, not as a missing file or after a long decode."""
    with pytest.raises(ValueError, match="rotations must be distinct"):
        load_omniglot("background", rotations=(45,), download=False)
