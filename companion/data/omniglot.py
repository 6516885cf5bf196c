"""Omniglot (Lake et al., 2015): 1623 handwritten characters from 50 alphabets, 20 drawers each.

Two standard splits:

* **Lake's** ``"background"`` (30 alphabets, 964 characters) for training and ``"evaluation"``
  (20 alphabets, 659 characters) for testing, as the data set was published.
* **Vinyals'** ``"train"`` (1028 characters), ``"val"`` (172), ``"trainval"`` (1200) and
  ``"test"`` (423), drawn from both archives, where each character rotated by 0, 90, 180 and
  270 degrees is a separate class (so 4112 / 688 / 4800 / 1692 classes). This is the split of
  Prototypical Networks and many later papers; its class lists come from the
  ``jakesnell/prototypical-networks`` repository. (MAML's and Reptile's code follow the same
  protocol, 1,200 training characters with rotations, but draw their own random character split.)

The two archives are decoded once (105x105 PNGs resized to ``image_size`` with a Lanczos filter,
inverted so that ink = 255) into a uint8 cache under the data folder. The cache is keyed by the
archives' SHA-256 and the decoder version, so a changed source is decoded again.

Chapter: Concepts (data). References: :cite:t:`lake2015human`, :cite:t:`vinyals2016matching`.
"""

from __future__ import annotations

import functools
import io
import os
import re
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from companion.data.dataset import ImageClassDataset
from companion.data.download import (
    CorruptDataError,
    RemoteFile,
    data_dir,
    fetch,
    file_digest,
)
from companion.utils import atomic_write

__all__ = ["OMNIGLOT_COUNTS", "OMNIGLOT_FILES", "OMNIGLOT_SPLITS", "VINYALS_FILES",
           "load_omniglot"]

_UPSTREAM = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"
_UPSTREAM_ALT = "https://github.com/brendenlake/omniglot/raw/master/python/"
_VINYALS = (
    "https://raw.githubusercontent.com/jakesnell/prototypical-networks/master/"
    "data/omniglot/splits/vinyals/"
)

OMNIGLOT_FILES = {
    "background": RemoteFile(
        "images_background.zip", "omniglot",
        (_UPSTREAM + "images_background.zip", _UPSTREAM_ALT + "images_background.zip"),
        md5="68d2efa1b9178cc56df9314c21c6e718", exact_mirror=False,  # mirrors rebuild it
    ),
    "evaluation": RemoteFile(
        "images_evaluation.zip", "omniglot",
        (_UPSTREAM + "images_evaluation.zip", _UPSTREAM_ALT + "images_evaluation.zip"),
        md5="6b91aef0f799c5bb55b94e3f2daec811", exact_mirror=False,
    ),
}
VINYALS_FILES = {
    split: RemoteFile(f"{split}.txt", "omniglot/splits/vinyals", (f"{_VINYALS}{split}.txt",),
                      sha256=sha)
    for split, sha in {
        "train": "984522c194c30fb678ce53304a160a42faf5403ad4f9a67010f32dd3a35738e0",
        "val": "11f99e54faee3e26f53d3231c1cceac5bf7b8730e9be31cb6dab256551dc0c1a",
        "trainval": "5276ae50c755596d0bff7f2284e85625695549a85ee6e36b6491ad1e5d1cc26a",
        "test": "845264cc5c156180828ccf17915668b17ee21424d0170df6e7d81676aa5d1204",
    }.items()
}
OMNIGLOT_SPLITS = ("background", "evaluation", "train", "val", "trainval", "test")
# (alphabets, characters, images) of each archive (Lake et al. 2015; data/omniglot/README.md)
OMNIGLOT_COUNTS = {"background": (30, 964, 19_280), "evaluation": (20, 659, 13_180)}
_DECODER_VERSION = 1
_DRAWERS = 20
_ROTATIONS = (0, 90, 180, 270)
_CLASS_LINE = re.compile(r"^(?P<char>[^/]+/character\d+)/rot(?P<rot>\d{3})$")


@dataclass(frozen=True)
class _Characters:
    """All 1623 characters: ``images`` ``[1623, 20, S, S]`` uint8 and their names."""

    images: np.ndarray
    names: tuple[str, ...]  # "Alphabet/characterNN"
    background: np.ndarray  # [1623] bool, True for the background archive


def load_omniglot(
    split: str = "background",
    *,
    image_size: int = 28,
    rotations: Sequence[int] | None = None,
    root: str | os.PathLike[str] | None = None,
    mirror: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: bool = True,
) -> ImageClassDataset:
    """Load an Omniglot split as an :class:`ImageClassDataset` of ``[N, 1, S, S]`` uint8 images.

    Args:
        split: ``"background"`` / ``"evaluation"`` (Lake) or ``"train"`` / ``"val"`` /
            ``"trainval"`` / ``"test"`` (Vinyals, rotations included).
        image_size: side length ``S`` in pixels after resizing (8 to 105).
        rotations: Lake splits only: which rotations (degrees, from 0/90/180/270) to include,
            each as its own class; default ``(0,)``.
        root: data folder (default: see :func:`companion.data.data_dir`).
        mirror: local mirror folder (default ``$COMPANION_DATA_MIRROR``).
        download: fetch missing files from the official sources.
        progress: show progress bars.

    Returns:
        The images (ink = 255), labels ``0 .. C-1`` and class names
        ``"Alphabet/characterNN/rotDDD"``.

    Example:
        >>> train = load_omniglot("train")          # 4112 classes x 20 images, 28x28
        >>> train.num_classes, train.images.shape
        (4112, torch.Size([82240, 1, 28, 28]))
    """
    if not isinstance(split, str) or split not in OMNIGLOT_SPLITS:
        raise ValueError(f"split must be one of {OMNIGLOT_SPLITS}, got {split!r}")
    if not isinstance(image_size, int) or not 8 <= image_size <= 105:
        raise ValueError(f"image_size must be an int from 8 to 105, got {image_size!r}")
    lake = split in ("background", "evaluation")
    rots = _check_rotations(rotations) if lake else ()  # every argument checked before loading
    if not lake and rotations is not None:
        raise ValueError(f"rotations is fixed by the Vinyals split {split!r}; leave it None")
    get = functools.partial(fetch, root=root, mirror=mirror, download_missing=download,
                            progress=progress)
    chars = _load_characters(image_size, get, data_dir(root), progress)
    index = {name: i for i, name in enumerate(chars.names)}
    if lake:
        wanted = [n for n, bg in zip(chars.names, chars.background, strict=True)
                  if bool(bg) == (split == "background")]
        classes = [(name, rot) for name in wanted for rot in rots]
    else:
        classes = _read_vinyals(get(VINYALS_FILES[split]), index)
    return _build(chars, index, classes, f"omniglot/{split}")


def _check_rotations(rotations: Sequence[int] | None) -> tuple[int, ...]:
    if rotations is not None and (isinstance(rotations, (str, bytes))
                                  or not isinstance(rotations, Sequence)):
        raise ValueError(f"rotations must be a sequence such as (0, 90), got {rotations!r}")
    rots = (0,) if rotations is None else tuple(rotations)
    if not rots or len(set(rots)) != len(rots) or any(r not in _ROTATIONS for r in rots):
        raise ValueError(f"rotations must be distinct values from {_ROTATIONS}, got {rotations!r}")
    return rots


def _read_vinyals(path: Path, index: dict[str, int]) -> list[tuple[str, int]]:
    classes = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise CorruptDataError(f"{path} is not a text list of classes ({err})") from err
    for line_no, line in enumerate(text.splitlines(), 1):
        match = _CLASS_LINE.match(line.strip())
        if not match or int(match["rot"]) not in _ROTATIONS:
            raise CorruptDataError(f"{path}:{line_no}: expected 'Alphabet/characterNN/rotDDD'")
        if match["char"] not in index:
            raise CorruptDataError(f"{path}:{line_no}: unknown character {match['char']!r}")
        classes.append((match["char"], int(match["rot"])))
    return classes


def _build(chars: _Characters, index: dict[str, int], classes: list[tuple[str, int]],
           name: str) -> ImageClassDataset:
    char_idx = torch.tensor([index[c] for c, _ in classes])
    turns = torch.tensor([rot // 90 for _, rot in classes])
    base = torch.from_numpy(chars.images)[char_idx]  # [C, 20, S, S]
    images = torch.empty_like(base)
    for k in range(4):  # rotate counter-clockwise by k * 90 degrees
        sel = (turns == k).nonzero().squeeze(1)
        images[sel] = torch.rot90(base[sel], k, dims=(-2, -1))
    n_classes, s = len(classes), chars.images.shape[-1]
    return ImageClassDataset(
        images=images.reshape(n_classes * _DRAWERS, 1, s, s),
        labels=torch.arange(n_classes).repeat_interleave(_DRAWERS),
        class_names=tuple(f"{c}/rot{rot:03d}" for c, rot in classes),
        name=name,
    )


def _load_characters(image_size: int, get: Callable[[RemoteFile], Path], root: Path,
                     progress: bool) -> _Characters:
    archives = {s: get(f) for s, f in OMNIGLOT_FILES.items()}
    key = "|".join([f"v{_DECODER_VERSION}", f"{image_size}px"]
                   + [file_digest(p) for p in archives.values()])
    cache = root / "omniglot" / "cache" / f"omniglot-{image_size}px.npz"
    try:
        if cache.is_file():
            with np.load(cache, allow_pickle=False) as z:
                if str(z["key"]) == key:
                    chars = _Characters(z["images"], tuple(z["names"].tolist()),
                                        z["background"])
                    _check_counts(chars, archives)
                    return chars
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        pass  # unreadable cache: decode again and overwrite it
    decoded = [_decode_archive(archives[s], image_size, progress) for s in ("background",
                                                                           "evaluation")]
    chars = _Characters(
        images=np.concatenate([d[0] for d in decoded]),
        names=tuple(decoded[0][1] + decoded[1][1]),
        background=np.array([True] * len(decoded[0][1]) + [False] * len(decoded[1][1])),
    )
    _check_counts(chars, archives)
    try:
        with atomic_write(cache) as tmp, open(tmp, "wb") as f:
            np.savez(f, images=chars.images, names=np.array(chars.names),
                     background=chars.background, key=np.array(key))
    except OSError as err:  # e.g. a read-only data folder: the cache is only an optimisation
        warnings.warn(f"could not write the decoded Omniglot cache {cache} ({err}); using the "
                      "images decoded in memory, which are decoded again on the next load. "
                      "Pass root= (or set COMPANION_DATA_DIR) to a writable folder to keep "
                      "them.", stacklevel=3)
    return chars


def _check_counts(chars: _Characters, archives: dict[str, Path]) -> None:
    """Each archive must hold the published numbers of alphabets, characters and images: a
    mirror checked only against its own SHA256SUMS could hold another archive."""
    for split, expected in OMNIGLOT_COUNTS.items():
        names = [n for n, bg in zip(chars.names, chars.background, strict=True)
                 if bool(bg) == (split == "background")]
        found = (len({n.split("/")[0] for n in names}), len(names), len(names) * _DRAWERS)
        if found != expected:
            raise CorruptDataError(
                f"{archives[split]} holds {found[0]} alphabets, {found[1]} characters and "
                f"{found[2]} images, but the published {split} set has {expected[0]}, "
                f"{expected[1]} and {expected[2]}: it is not the right archive (check the "
                "mirror, or delete the file to download it again)"
            )


def _decode_archive(path: Path, size: int, progress: bool) -> tuple[np.ndarray, list[str]]:
    """Decode ``<top>/<Alphabet>/<characterNN>/<id>_<drawer>.png`` into ``[chars, 20, S, S]``."""
    try:
        with zipfile.ZipFile(path) as zf:
            members: dict[str, list[str]] = {}
            for name in sorted(zf.namelist()):
                parts = name.split("/")
                if len(parts) == 4 and parts[3].endswith(".png") and "__MACOSX" not in parts:
                    members.setdefault(f"{parts[1]}/{parts[2]}", []).append(name)
            if not members:
                raise CorruptDataError(f"{path} holds no <top>/<Alphabet>/<char>/*.png images")
            images = np.empty((len(members), _DRAWERS, size, size), dtype=np.uint8)
            for i, (char, files) in enumerate(tqdm(members.items(), desc=f"decode {path.name}",
                                                   disable=not progress)):
                if len(files) != _DRAWERS:
                    raise CorruptDataError(f"{path}: {char} has {len(files)} images, not 20")
                for j, member in enumerate(files):
                    images[i, j] = _decode_png(zf.read(member), size)
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        raise CorruptDataError(
            f"{path} is not a readable zip archive ({err}); it may be truncated. Delete it and "
            "load again to re-download, or check your mirror."
        ) from err
    return images, list(members)


def _decode_png(data: bytes, size: int) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        gray = im.convert("L")  # strokes 0, paper 255
        if gray.size != (size, size):
            gray = gray.resize((size, size), Image.Resampling.LANCZOS)
        return 255 - np.asarray(gray, dtype=np.uint8)  # ink = 255
