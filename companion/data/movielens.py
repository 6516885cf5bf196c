"""MovieLens 100K (Harper and Konstan, 2015): ratings, user demographics and movie genres.

The files are resolved by :func:`~companion.data.download.fetch`, one extracted file at a time:

1. a local mirror (``mirror=`` or ``$COMPANION_DATA_MIRROR``) holding
   ``movielens/ml-100k/<file>`` and a ``SHA256SUMS`` list;
2. files already extracted into ``<data root>/movielens/ml-100k/``;
3. otherwise the official zip is downloaded from GroupLens into a temporary file, each needed
   member is checked against the SHA-256 recorded here (:data:`MOVIELENS_SHA256`), and only when
   *every* member verifies are they written, each atomically; the zip is then deleted.

Why per-file checksums: GroupLens publishes no SHA-256 of the archive, and the project could not
verify the archive's bytes, only those of the extracted files (see ``data/movielens/README.md``).
A zip whose members match is accepted whatever its own bytes (timestamps, compression level).

Ids: MovieLens numbers users 1..943 and movies 1..1682; this module uses **0-based indices**
(``user index = MovieLens id - 1``) everywhere.

Chapter: Applications (cold-start recommendation). Reference: :cite:t:`harper2015movielens`.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from torch import Tensor
from tqdm import tqdm

from companion.data.download import (
    MIRROR_ENV,
    ChecksumError,
    CorruptDataError,
    DataError,
    DownloadError,
    RemoteFile,
    data_dir,
    fetch,
)
from companion.utils import atomic_write

__all__ = [
    "AGE_GROUPS",
    "ITEM_CARDINALITIES",
    "MOVIELENS_FILES",
    "MOVIELENS_SHA256",
    "MOVIELENS_URLS",
    "USER_CARDINALITIES",
    "MovieLens100K",
    "load_movielens",
]

_T = TypeVar("_T")
MOVIELENS_URLS: tuple[str, ...] = ("https://files.grouplens.org/datasets/movielens/ml-100k.zip",)
SUBDIR = "movielens/ml-100k"
_MEMBER_DIR = "ml-100k/"  # the folder inside the official zip

# SHA-256 of the extracted files (cross-checked copies; see data/movielens/README.md).
MOVIELENS_SHA256: dict[str, str] = {
    "README": "4883b8cf340ed0059971b33f56ad3adc88a40792108ebca3d24aafc4c82e8b52",
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.genre": "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
    "u.info": "5b0a40b2e47a729ee6203063f6dcf8790c2e63f5a18663e6ee318a72c5f3c27b",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "u.occupation": "cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d",
    "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
}
_NEEDED = ("u.data", "u.user", "u.item", "u.genre", "u.occupation", "README")
N_USERS, N_ITEMS, N_RATINGS, N_GENRES = 943, 1682, 100_000, 19

# Age groups of MovieLens 1M (Harper and Konstan, 2015): lower bounds of each group.
AGE_GROUPS: tuple[int, ...] = (0, 18, 25, 35, 45, 50, 56)
_DECADES = tuple(range(1920, 2000, 10))  # release decade buckets; index 0 = unknown date
# Categories of each column of user_features (gender, age group, occupation, zip region) and
# of column 0 of item_features (release decade); the 19 genre flags follow in item_features.
USER_CARDINALITIES: tuple[int, ...] = (2, len(AGE_GROUPS), 21, 11)
ITEM_CARDINALITIES: tuple[int, ...] = (len(_DECADES) + 1,)


def _remote(name: str) -> RemoteFile:
    return RemoteFile(name, SUBDIR, MOVIELENS_URLS, sha256=MOVIELENS_SHA256[name])


MOVIELENS_FILES: dict[str, RemoteFile] = {name: _remote(name) for name in _NEEDED}


@dataclass(frozen=True, eq=False)
class MovieLens100K:
    """MovieLens 100K as tensors (0-based user and movie indices).

    Attributes:
        user: ``[100000]`` int64 user index of each rating.
        item: ``[100000]`` int64 movie index of each rating.
        rating: ``[100000]`` float32 stars, 1 to 5.
        timestamp: ``[100000]`` int64 Unix time of each rating.
        user_features: ``[943, 4]`` int64 categories: gender (0 = M, 1 = F), age group (index
            into :data:`AGE_GROUPS`), occupation (index into ``occupations``), zip region
            (first digit 0-9, or 10 for a zip code that does not start with a digit).
        age: ``[943]`` int64 age in years.
        zip_codes: zip code of each user, as written.
        item_features: ``[1682, 20]`` int64: column 0 the release decade (0 = unknown,
            1 = before 1930, ..., 8 = the 1990s), columns 1..19 the genre flags (0/1, in the
            order of ``genres``).
        release_year: ``[1682]`` int64 (0 where unknown).
        titles: movie titles.
        genres: the 19 genre names (``u.genre``).
        occupations: the 21 occupation names (``u.occupation``).
    """

    user: Tensor
    item: Tensor
    rating: Tensor
    timestamp: Tensor
    user_features: Tensor
    age: Tensor
    zip_codes: tuple[str, ...]
    item_features: Tensor
    release_year: Tensor
    titles: tuple[str, ...]
    genres: tuple[str, ...]
    occupations: tuple[str, ...]

    @property
    def n_users(self) -> int:
        return self.user_features.shape[0]

    @property
    def n_items(self) -> int:
        return self.item_features.shape[0]

    def check_users(self, users: Tensor | Sequence[int], name: str = "users") -> Tensor:
        """``users`` as an int64 tensor; ValueError naming ``name`` if any index is unknown."""
        return _check_ids(users, self.n_users, name, "user")

    def check_items(self, items: Tensor | Sequence[int], name: str = "items") -> Tensor:
        """``items`` as an int64 tensor; ValueError naming ``name`` if any index is unknown."""
        return _check_ids(items, self.n_items, name, "movie")

    def features(self, user: int, items: Tensor | Sequence[int]) -> Tensor:
        """Model inputs for one user and some movies: ``[n, 4 + 20]`` int64.

        Each row is the user's 4 categorical features followed by the movie's 20 columns
        (:attr:`item_features`), the input of :class:`companion.recommend.RatingModel`.
        """
        u = self.check_users([user], "user")
        i = self.check_items(items, "items")
        user_part = self.user_features[u].expand(i.shape[0], -1)  # [n, 4]
        return torch.cat([user_part, self.item_features[i]], dim=1)  # [n, 24]

    def ratings_of(self, user: int) -> tuple[Tensor, Tensor]:
        """The movies ``user`` rated (sorted by movie index) and the ratings: ``[n]``, ``[n]``."""
        u = int(self.check_users([user], "user")[0])
        rows = (self.user == u).nonzero().squeeze(1)  # [n]
        order = self.item[rows].argsort()
        rows = rows[order]
        return self.item[rows], self.rating[rows]

    def counts_per_user(self) -> Tensor:
        """``[943]`` number of ratings of each user."""
        return torch.bincount(self.user, minlength=self.n_users)


def _check_ids(ids: Tensor | Sequence[int], n: int, name: str, what: str) -> Tensor:
    t = torch.as_tensor(ids)
    if t.dtype.is_floating_point or t.dtype == torch.bool or t.ndim != 1:
        raise ValueError(f"{name} must be a 1-d sequence of integer {what} indices, got "
                         f"dtype {t.dtype} and shape {tuple(t.shape)}")
    t = t.long()
    bad = t[(t < 0) | (t >= n)]
    if bad.numel():
        raise ValueError(f"{name} holds unknown {what} indices {bad[:5].tolist()}; MovieLens "
                         f"100K has {what} indices 0..{n - 1} (its 1-based id minus 1)")
    return t


# ---------------------------------------------------------------------------- files

def movielens_files(
    *,
    root: str | os.PathLike[str] | None = None,
    mirror: str | os.PathLike[str] | None = None,
    download: bool = True,
    retries: int = 3,
    timeout: float = 60.0,
    progress: bool = True,
) -> dict[str, Path]:
    """Verified paths of the extracted files (mirror, then data root, then the official zip).

    Raises:
        ChecksumError: a mirror file, or a member of the downloaded zip, has the wrong SHA-256.
        CorruptDataError: the downloaded zip is not readable or lacks a file.
        DownloadError: the zip could not be downloaded.
        FileNotFoundError: files are missing and ``download`` is False.
    """
    def resolve() -> dict[str, Path]:
        return {name: fetch(remote, root=root, mirror=mirror, download_missing=False,
                            progress=progress) for name, remote in MOVIELENS_FILES.items()}

    try:
        return resolve()
    except FileNotFoundError as missing:
        if not download:
            raise FileNotFoundError(
                f"{missing}. MovieLens 100K comes as one zip ({MOVIELENS_URLS[0]}): pass "
                f"download=True, or set {MIRROR_ENV} to a folder holding {SUBDIR}/ with the "
                "extracted files and a SHA256SUMS list") from missing
    download_and_extract(data_dir(root) / SUBDIR, retries=retries, timeout=timeout,
                         progress=progress)
    return resolve()


def download_and_extract(target: Path, *, urls: Sequence[str] | None = None, retries: int = 3,
                         timeout: float = 60.0, progress: bool = True) -> None:
    """Download the zip to a temporary file, verify every needed member, then write each
    member atomically into ``target``; the zip is removed whatever happens.

    Nothing is written into ``target`` unless every member verifies.
    """
    if retries < 1:
        raise ValueError(f"retries must be >= 1, got {retries}")
    urls = tuple(MOVIELENS_URLS if urls is None else urls)
    target.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target, prefix=".ml-100k.", suffix=".zip.tmp")
    os.close(fd)
    archive = Path(name)
    try:
        _download_any(urls, archive, retries=retries, timeout=timeout, progress=progress)
        members = extract_verified(archive)
        for member, data in members.items():
            with atomic_write(target / member) as tmp:
                tmp.write_bytes(data)
    finally:
        archive.unlink(missing_ok=True)


def _download_any(urls: Sequence[str], archive: Path, *, retries: int, timeout: float,
                  progress: bool) -> None:
    failures: list[str] = []
    for round_ in range(retries):
        if round_:
            time.sleep(float(round_))
        for url in urls:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp, \
                        open(archive, "wb") as out:
                    total = int(resp.headers.get("Content-Length") or 0) or None
                    received = 0
                    with tqdm(total=total, unit="B", unit_scale=True, desc="ml-100k.zip",
                              disable=not progress) as bar:
                        while chunk := resp.read(1 << 20):
                            out.write(chunk)
                            received += len(chunk)
                            bar.update(len(chunk))
                if total is not None and received != total:
                    raise DataError(f"connection closed after {received} of {total} bytes")
                return
            except (OSError, http.client.HTTPException, DataError) as err:
                failures.append(f"  round {round_ + 1}, {url}: {err}")
    raise DownloadError("could not download ml-100k.zip:\n" + "\n".join(failures) + f"\nOffline? "
                        f"Set {MIRROR_ENV} to a folder holding {SUBDIR}/ with the extracted "
                        "files and a SHA256SUMS list.")


def extract_verified(archive: Path) -> dict[str, bytes]:
    """The needed members of the zip, each checked against :data:`MOVIELENS_SHA256`.

    Raises:
        CorruptDataError: unreadable zip, or a needed member is missing.
        ChecksumError: a member's SHA-256 differs from the recorded one.
    """
    out: dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(archive) as zf:
            names = set(zf.namelist())
            for name in _NEEDED:
                member = _MEMBER_DIR + name
                if member not in names:
                    raise CorruptDataError(f"{archive} has no {member}; is it the MovieLens 100K "
                                           "zip?")
                out[name] = zf.read(member)
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        raise CorruptDataError(f"{archive} is not a readable zip archive ({err}); it may be "
                               "truncated") from err
    for name, data in out.items():
        digest = hashlib.sha256(data).hexdigest()
        if digest != MOVIELENS_SHA256[name]:
            raise ChecksumError(f"{archive}: member {name} has SHA-256 {digest}, expected "
                                f"{MOVIELENS_SHA256[name]}; not the published file")
    return out


# ---------------------------------------------------------------------------- parsing

def _lines(path: Path, encoding: str = "latin-1") -> list[str]:
    return [line for line in path.read_text(encoding=encoding).splitlines() if line.strip()]


def _parse(path: Path, parse: Callable[[list[str]], _T]) -> _T:
    try:
        return parse(_lines(path))
    except (ValueError, IndexError, KeyError) as err:
        raise CorruptDataError(f"{path} cannot be parsed ({err})") from err


def _expect(count: int, expected: int, what: str, path: Path) -> None:
    if count != expected:
        raise CorruptDataError(f"{path}: {count} {what}, expected {expected}")


def load_movielens(
    *,
    root: str | os.PathLike[str] | None = None,
    mirror: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: bool = True,
) -> MovieLens100K:
    """Load MovieLens 100K (943 users, 1,682 movies, 100,000 ratings) as tensors.

    Args:
        root: data folder (default :func:`~companion.data.download.data_dir`).
        mirror: local mirror folder (default ``$COMPANION_DATA_MIRROR``).
        download: download the official zip if the files are not found.
        progress: progress bars.

    Returns:
        A :class:`MovieLens100K`.

    Raises:
        ChecksumError, CorruptDataError, DownloadError: bad or unreachable files (see
            :func:`movielens_files`); the counts are checked against 943/1,682/100,000.
        FileNotFoundError: files are missing and ``download`` is False.
    """
    paths = movielens_files(root=root, mirror=mirror, download=download, progress=progress)
    genres = _parse(paths["u.genre"], lambda ls: [ln.split("|")[0] for ln in ls])
    occupations = _parse(paths["u.occupation"], lambda ls: [ln.strip() for ln in ls])
    _expect(len(genres), N_GENRES, "genres", paths["u.genre"])
    _expect(len(occupations), USER_CARDINALITIES[2], "occupations", paths["u.occupation"])
    occ_index = {name: i for i, name in enumerate(occupations)}

    def users(ls: list[str]) -> tuple[list[list[int]], list[int], list[str]]:
        feats, ages, zips = [], [], []
        for expected_id, line in enumerate(ls, 1):
            uid, age, gender, occ, zipc = line.split("|")
            if int(uid) != expected_id:
                raise ValueError(f"user id {uid} on line {expected_id}")
            group = sum(int(age) >= low for low in AGE_GROUPS) - 1
            region = int(zipc[0]) if zipc[:1].isdigit() else 10
            feats.append([{"M": 0, "F": 1}[gender], group, occ_index[occ], region])
            ages.append(int(age))
            zips.append(zipc)
        return feats, ages, zips

    def items(ls: list[str]) -> tuple[list[list[int]], list[int], list[str]]:
        feats, years, titles = [], [], []
        for expected_id, line in enumerate(ls, 1):
            fields = line.split("|")
            if int(fields[0]) != expected_id or len(fields) != 5 + N_GENRES:
                raise ValueError(f"line {expected_id} has id {fields[0]} and {len(fields)} fields")
            year = int(fields[2][-4:]) if fields[2] else 0
            decade = 0 if year == 0 else 1 + sum(year >= d for d in _DECADES[1:])
            flags = [int(f) for f in fields[5:]]
            if any(f not in (0, 1) for f in flags):
                raise ValueError(f"genre flags of line {expected_id} are not 0/1")
            feats.append([decade, *flags])
            years.append(year)
            titles.append(fields[1])
        return feats, years, titles

    def ratings(ls: list[str]) -> list[list[int]]:
        return [[int(v) for v in line.split("\t")] for line in ls]

    user_feats, ages, zips = _parse(paths["u.user"], users)
    item_feats, years, titles = _parse(paths["u.item"], items)
    rows = torch.tensor(_parse(paths["u.data"], ratings), dtype=torch.int64)  # [N, 4]
    _expect(len(user_feats), N_USERS, "users", paths["u.user"])
    _expect(len(item_feats), N_ITEMS, "movies", paths["u.item"])
    _expect(rows.shape[0], N_RATINGS, "ratings", paths["u.data"])
    if rows.shape[1] != 4:
        raise CorruptDataError(f"{paths['u.data']}: expected 4 columns, got {rows.shape[1]}")
    user, item = rows[:, 0] - 1, rows[:, 1] - 1
    if (user.min() < 0 or user.max() >= N_USERS or item.min() < 0 or item.max() >= N_ITEMS
            or rows[:, 2].min() < 1 or rows[:, 2].max() > 5):
        raise CorruptDataError(f"{paths['u.data']}: a user/movie id or a rating out of range")
    return MovieLens100K(
        user=user, item=item, rating=rows[:, 2].float(), timestamp=rows[:, 3],
        user_features=torch.tensor(user_feats, dtype=torch.int64),
        age=torch.tensor(ages, dtype=torch.int64), zip_codes=tuple(zips),
        item_features=torch.tensor(item_feats, dtype=torch.int64),
        release_year=torch.tensor(years, dtype=torch.int64), titles=tuple(titles),
        genres=tuple(genres), occupations=tuple(occupations),
    )
