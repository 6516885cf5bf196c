"""Fetching data files: verified downloads, written atomically, or a verified local mirror.

Every data set in the book goes through :func:`fetch`, which resolves a :class:`RemoteFile` in
this order:

1. a **local mirror** (argument ``mirror=`` or the environment variable
   ``COMPANION_DATA_MIRROR``): a folder with one sub-folder per data set, each holding the files
   and a ``SHA256SUMS`` list. The file is used in place after its SHA-256 matches that list
   and, unless the file is one that mirrors rebuild (``exact_mirror=False``, Omniglot's
   archives), every published checksum too; a rebuilt file is checked by its loader after
   decoding (counts of classes and images).
2. a file already downloaded into ``root`` whose checksums match the known upstream ones;
3. a **download** from the official URLs (tried in order, ``retries`` rounds), streamed into a
   temporary file next to the target, verified, and only then renamed into place. An interrupted
   or corrupt download therefore never leaves a file behind under the final name.

Chapter: Concepts (data).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from companion.utils import atomic_write

__all__ = [
    "ChecksumError",
    "CorruptDataError",
    "DataError",
    "DownloadError",
    "RemoteFile",
    "data_dir",
    "download",
    "fetch",
    "file_digest",
    "mirror_dir",
    "read_checksum_file",
]

MIRROR_ENV = "COMPANION_DATA_MIRROR"
DATA_DIR_ENV = "COMPANION_DATA_DIR"
_CHUNK = 1 << 20


class DataError(RuntimeError):
    """Base class for problems with data files (not with the caller's arguments)."""


class ChecksumError(DataError):
    """A file's content does not match its published checksum."""


class DownloadError(DataError):
    """Every URL of a file failed in every retry round."""


class CorruptDataError(DataError):
    """A file has the right name but cannot be decoded (truncated archive, bad header, ...)."""


@dataclass(frozen=True)
class RemoteFile:
    """A file of a data set: where it comes from and how to recognise the right bytes.

    Args:
        name: file name on disk, e.g. ``"images_background.zip"``.
        subdir: folder of the data set inside the data root and inside a mirror,
            e.g. ``"omniglot"`` or ``"omniglot/splits/vinyals"``.
        urls: official download locations, tried in order.
        md5: upstream MD5 (hex), if published.
        sha256: upstream SHA-256 (hex), if known.
        exact_mirror: a mirror's copy must be byte-identical with the official file, so it is
            checked against ``md5``/``sha256`` as well as the mirror's own list. False for
            files that mirrors may rebuild with other bytes (Omniglot's archives, see
            ``data/omniglot/README.md``); the loader then checks the decoded content.
    """

    name: str
    subdir: str
    urls: tuple[str, ...]
    md5: str | None = None
    sha256: str | None = None
    exact_mirror: bool = True
    digests: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.urls, tuple) or not all(isinstance(u, str) for u in self.urls):
            raise ValueError(f"RemoteFile {self.name!r}: urls must be a tuple of URL strings, "
                             f"got {self.urls!r}")
        if not self.urls:
            raise ValueError(f"RemoteFile {self.name!r}: urls must not be empty")
        digests = {k: v.lower() for k, v in (("md5", self.md5), ("sha256", self.sha256)) if v}
        if not digests:
            raise ValueError(f"RemoteFile {self.name!r}: give at least one of md5= or sha256=")
        object.__setattr__(self, "digests", digests)


def data_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """The folder where downloads and decoded caches are written.

    ``root`` if given, else ``$COMPANION_DATA_DIR``, else the ``data/`` folder of the book's
    repository when the package runs from a checkout, else ``~/.cache/companion``.
    """
    if root is not None:
        _check_path("root", root)
        return Path(root).expanduser()
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    checkout_data = Path(__file__).resolve().parents[2] / "data"
    if (checkout_data / "README.md").is_file():
        return checkout_data
    return Path.home() / ".cache" / "companion"


def mirror_dir(mirror: str | os.PathLike[str] | None = None) -> Path | None:
    """The local mirror folder: ``mirror`` if given, else ``$COMPANION_DATA_MIRROR``, else None.

    Raises:
        ValueError: if a mirror is named but is not an existing folder.
    """
    source = "mirror" if mirror is not None else MIRROR_ENV
    value = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    if value is None:
        return None
    _check_path(source, value)
    if str(value).strip() == "":
        raise ValueError("mirror='' names no folder; pass None to use no mirror")
    path = Path(value).expanduser()
    if not path.is_dir():
        raise ValueError(
            f"{source}={str(value)!r} is not an existing folder; a mirror is a folder holding "
            "one sub-folder per data set (e.g. omniglot/, mnist/), each with a SHA256SUMS file"
        )
    return path


def _check_path(name: str, value: object) -> None:
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"{name} must be a folder path (str or pathlib.Path), got {value!r}")


def file_digest(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    return _file_digests(path, (algorithm,))[algorithm]


def _file_digests(path: str | os.PathLike[str], algorithms: Iterable[str]) -> dict[str, str]:
    """Several hex digests of a file in one pass over its bytes."""
    hashes = {name: hashlib.new(name) for name in algorithms}
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            for h in hashes.values():
                h.update(chunk)
    return {name: h.hexdigest() for name, h in hashes.items()}


def read_checksum_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """Parse a ``sha256sum``/``md5sum`` style file into ``{file name: hex digest}``.

    Raises:
        CorruptDataError: the file is not UTF-8 text or a line is not ``<digest>  <file>``.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise CorruptDataError(f"{path} is not a text checksum list ({err}); restore it "
                               "(e.g. from the mirror's source) or regenerate it with "
                               "sha256sum") from err
    sums: dict[str, str] = {}
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2:
            raise CorruptDataError(f"{path}:{line_no}: expected '<digest>  <file>', got {line!r}")
        digest, name = parts
        sums[name.lstrip("*").strip()] = digest.lower()
    return sums


def _verify(path: Path, digests: dict[str, str], what: str) -> None:
    actual_digests = _file_digests(path, digests)
    for algorithm, expected in digests.items():
        actual = actual_digests[algorithm]
        if actual != expected:
            raise ChecksumError(
                f"{what}: {algorithm} is {actual}, expected {expected}. The file is corrupt or "
                "not the published version."
            )


def _from_mirror(remote: RemoteFile, mirror: Path) -> Path | None:
    folder = mirror / remote.subdir
    candidate = folder / remote.name
    if not candidate.is_file():
        return None
    sums_file = folder / "SHA256SUMS"
    if not sums_file.is_file():
        raise ChecksumError(f"mirror file {candidate} has no {sums_file} to be verified against")
    sums = read_checksum_file(sums_file)
    if remote.name not in sums:
        raise ChecksumError(f"mirror file {candidate} is not listed in {sums_file}")
    official = remote.digests if remote.exact_mirror else {}
    actual = _file_digests(candidate, {"sha256", *official})  # one pass over the bytes
    if actual["sha256"] != sums[remote.name]:
        raise ChecksumError(
            f"mirror file {candidate}: sha256 is {actual['sha256']}, expected "
            f"{sums[remote.name]} (its {sums_file}). The file is corrupt or not the published "
            "version."
        )
    for algorithm in sorted(official, key=lambda a: a != "sha256"):  # SHA-256 first
        expected = official[algorithm]
        if actual[algorithm] != expected:
            raise ChecksumError(
                f"mirror file {candidate} matches its own {sums_file}, but not the published "
                f"{_NAMES[algorithm]} {expected}: it is not the official file"
            )
    return candidate


_NAMES = {"sha256": "SHA-256", "md5": "MD5"}


def fetch(
    remote: RemoteFile,
    *,
    root: str | os.PathLike[str] | None = None,
    mirror: str | os.PathLike[str] | None = None,
    download_missing: bool = True,
    retries: int = 3,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Return a verified local path for ``remote`` (see the module docstring for the order).

    Raises:
        ChecksumError: a mirror file has the wrong checksum.
        DownloadError: the file is not available locally and every download attempt failed
            (including attempts whose bytes had the wrong checksum; the message lists each).
        FileNotFoundError: the file is missing and ``download_missing`` is False.
    """
    if not isinstance(remote, RemoteFile):
        raise ValueError(f"remote must be a RemoteFile (e.g. OMNIGLOT_FILES['background']), got "
                         f"{remote!r}")
    local_mirror = mirror_dir(mirror)
    if local_mirror is not None:
        found = _from_mirror(remote, local_mirror)
        if found is not None:
            return found
    target = data_dir(root) / remote.subdir / remote.name
    if target.is_file():
        try:
            _verify(target, remote.digests, str(target))
            return target
        except ChecksumError:
            target.unlink()  # a stale or damaged copy: replace it below
    if not download_missing:
        raise FileNotFoundError(
            f"{target} is missing and download_missing=False; download it from {remote.urls[0]} "
            f"or set {MIRROR_ENV} to a folder holding {remote.subdir}/{remote.name}"
        )
    return download(remote, target, retries=retries, timeout=timeout, progress=progress)


def download(
    remote: RemoteFile,
    target: str | os.PathLike[str],
    *,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 1.0,
    progress: bool = True,
) -> Path:
    """Download ``remote`` to ``target``: stream to a temporary file, verify, rename.

    Args:
        remote: what to download and its checksums.
        target: final path; its folder is created if needed.
        retries: rounds over all URLs before giving up (>= 1).
        timeout: socket timeout per request, in seconds (> 0).
        backoff: seconds to wait before round ``r`` is ``backoff * r`` (>= 0).
        progress: show a tqdm progress bar.

    Returns:
        ``target`` as a Path, holding verified bytes.

    Raises:
        DownloadError: every attempt failed; the message lists each failure.
    """
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 1:
        raise ValueError(f"retries must be an int >= 1, got {retries!r}")
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
    if not isinstance(backoff, (int, float)) or isinstance(backoff, bool) or not backoff >= 0:
        raise ValueError(f"backoff must be >= 0 seconds, got {backoff!r}")
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for round_ in range(retries):
        if round_:
            time.sleep(backoff * round_)
        for url in remote.urls:
            try:
                _download_once(url, target, remote.digests, timeout=timeout, progress=progress)
                return target
            except (OSError, http.client.HTTPException, DataError) as err:
                failures.append(f"  round {round_ + 1}, {url}: {err}")
    raise DownloadError(
        f"could not download {remote.name} after {retries} round(s):\n" + "\n".join(failures)
        + f"\nOffline? Put the file in {target.parent} yourself, or set {MIRROR_ENV} to a folder "
        f"holding {remote.subdir}/{remote.name} and a SHA256SUMS list."
    )


def _download_once(
    url: str, target: Path, digests: dict[str, str], *, timeout: float, progress: bool
) -> None:
    hashes = {name: hashlib.new(name) for name in digests}
    with atomic_write(target) as tmp:  # renamed onto target only if every check below passes
        with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            received = 0
            with tqdm(
                total=total, unit="B", unit_scale=True, desc=target.name, disable=not progress
            ) as bar:
                for chunk in _chunks(resp):
                    out.write(chunk)
                    for h in hashes.values():
                        h.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if total is not None and received != total:
                raise DataError(f"connection closed after {received} of {total} bytes")
        for name, h in hashes.items():
            if h.hexdigest() != digests[name]:
                raise ChecksumError(
                    f"downloaded bytes have {name} {h.hexdigest()}, expected {digests[name]}"
                )


def _chunks(resp: object) -> Iterable[bytes]:
    read = resp.read  # type: ignore[attr-defined]
    while chunk := read(_CHUNK):
        yield chunk

