"""Downloads and mirrors: verified, atomic, retried; bad input and bad bytes raise clearly."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
from pathlib import Path

import pytest

from companion.data.download import (
    ChecksumError,
    CorruptDataError,
    DownloadError,
    RemoteFile,
    data_dir,
    download,
    fetch,
    mirror_dir,
    read_checksum_file,
)

PAYLOAD = b"few-shot " * 50_000  # 450 kB, several read chunks


def _remote(base: str, payload: bytes = PAYLOAD, name: str = "file.bin") -> RemoteFile:
    return RemoteFile(name, "set", (base + name,), md5=hashlib.md5(payload).hexdigest(),
                      sha256=hashlib.sha256(payload).hexdigest())


@pytest.fixture
def served(tmp_path: Path, http_server) -> tuple[Path, str]:
    folder = tmp_path / "www"
    folder.mkdir()
    (folder / "file.bin").write_bytes(PAYLOAD)
    return folder, http_server(folder)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_writes_verified_file_and_no_temp_files(served, tmp_path):
    _, base = served
    target = tmp_path / "out" / "file.bin"
    assert download(_remote(base), target, progress=False) == target
    assert target.read_bytes() == PAYLOAD
    assert _leftovers(target.parent) == ["file.bin"]


def test_checksum_mismatch_raises_and_leaves_nothing(served, tmp_path):
    _, base = served
    wrong = dataclasses.replace(_remote(base), sha256="0" * 64)
    target = tmp_path / "out" / "file.bin"
    with pytest.raises(DownloadError, match="sha256"):
        download(wrong, target, retries=2, backoff=0, progress=False)
    assert _leftovers(target.parent) == []


class _Truncating(http.server.SimpleHTTPRequestHandler):
    """Announces the full length but closes the connection after half the bytes."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
        self.close_connection = True


def test_interrupted_download_raises_and_leaves_nothing(tmp_path, http_server):
    base = http_server(tmp_path, _Truncating)
    target = tmp_path / "out" / "file.bin"
    with pytest.raises(DownloadError):
        download(_remote(base), target, retries=2, backoff=0, timeout=5, progress=False)
    assert _leftovers(target.parent) == []


def test_failed_round_is_retried(served, tmp_path, http_server):
    folder, _ = served
    calls = {"n": 0}

    class FlakyOnce(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            calls["n"] += 1
            if calls["n"] == 1:
                self.send_error(503, "try again")
            else:
                super().do_GET()

    base = http_server(folder, FlakyOnce)
    target = tmp_path / "out" / "file.bin"
    download(_remote(base), target, retries=2, backoff=0, progress=False)
    assert calls["n"] == 2 and target.read_bytes() == PAYLOAD


def test_second_url_is_used_when_the_first_fails(served, tmp_path):
    _, base = served
    remote = dataclasses.replace(_remote(base), urls=(base + "missing.bin", base + "file.bin"))
    target = download(remote, tmp_path / "file.bin", retries=1, progress=False)
    assert target.read_bytes() == PAYLOAD


def _mirror(tmp_path: Path, sums_line: str | None) -> Path:
    root = tmp_path / "mirror"
    (root / "set").mkdir(parents=True)
    (root / "set" / "file.bin").write_bytes(PAYLOAD)
    if sums_line is not None:
        (root / "set" / "SHA256SUMS").write_text(sums_line)
    return root


def test_fetch_prefers_a_verified_mirror_without_copying(tmp_path, data_root):
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    root = _mirror(tmp_path, f"{sha}  file.bin\n")
    remote = _remote("http://127.0.0.1:9/")  # unreachable: the mirror must be used
    assert fetch(remote, mirror=root) == root / "set" / "file.bin"
    assert _leftovers(data_root) == []


@pytest.mark.parametrize("sums", [f"{'0' * 64}  file.bin\n", f"{'0' * 64}  other.bin\n", None])
def test_mirror_file_that_does_not_verify_raises(tmp_path, data_root, sums):
    root = _mirror(tmp_path, sums)
    with pytest.raises(ChecksumError):
        fetch(_remote("http://127.0.0.1:9/"), mirror=root)


def test_mirror_from_environment(tmp_path, data_root, monkeypatch):
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    root = _mirror(tmp_path, f"{sha} *file.bin\n")  # binary-mode marker is accepted
    monkeypatch.setenv("COMPANION_DATA_MIRROR", str(root))
    assert fetch(_remote("http://127.0.0.1:9/")) == root / "set" / "file.bin"


def test_fetch_downloads_into_root_and_replaces_a_corrupt_copy(served, data_root, no_mirror):
    _, base = served
    stale = data_root / "set" / "file.bin"
    stale.parent.mkdir()
    stale.write_bytes(b"corrupt")
    path = fetch(_remote(base), progress=False)
    assert path == stale and path.read_bytes() == PAYLOAD


def test_fetch_without_download_raises_file_not_found(data_root, no_mirror):
    with pytest.raises(FileNotFoundError, match="download_missing=False"):
        fetch(_remote("http://127.0.0.1:9/"), download_missing=False)


def test_missing_mirror_folder_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="mirror="):
        mirror_dir(tmp_path / "nope")
    with pytest.raises(ValueError, match="names no folder"):
        mirror_dir("")


def test_mirror_must_also_match_the_published_checksum(tmp_path, data_root):
    """Self-consistent but wrong bytes (file and SHA256SUMS both changed) are rejected when
    the official SHA-256 is known."""
    other = b"not the official bytes"
    root = _mirror(tmp_path, f"{hashlib.sha256(other).hexdigest()}  file.bin\n")
    (root / "set" / "file.bin").write_bytes(other)
    with pytest.raises(ChecksumError, match="published SHA-256"):
        fetch(_remote("http://127.0.0.1:9/"), mirror=root)


@pytest.mark.parametrize("kwargs", [{"retries": 0}, {"timeout": 0}, {"backoff": -1}])
def test_bad_download_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        download(_remote("http://127.0.0.1:9/"), tmp_path / "x", **kwargs)


def test_remote_file_needs_urls_and_a_checksum():
    with pytest.raises(ValueError, match="urls"):
        RemoteFile("a", "b", ())
    with pytest.raises(ValueError, match="md5= or sha256="):
        RemoteFile("a", "b", ("http://x/a",))


def test_read_checksum_file(tmp_path):
    f = tmp_path / "SHA256SUMS"
    f.write_text("# comment\nABCDEF  a.zip\n012345 *b.zip\n\n")
    assert read_checksum_file(f) == {"a.zip": "abcdef", "b.zip": "012345"}


def test_data_dir_order(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPANION_DATA_DIR", str(tmp_path / "env"))
    assert data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert data_dir() == tmp_path / "env"


def test_a_binary_checksum_list_is_corrupt_data(tmp_path, data_root):
    root = _mirror(tmp_path, None)
    (root / "set" / "SHA256SUMS").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe" * 20)
    with pytest.raises(CorruptDataError, match="not a text checksum list"):
        fetch(_remote("http://127.0.0.1:9/"), mirror=root)
    with pytest.raises(CorruptDataError, match="not a text checksum list"):
        read_checksum_file(root / "set" / "SHA256SUMS")


def test_mirror_must_match_the_published_md5_when_only_md5_is_known(tmp_path, data_root):
    other = b"not the official bytes"
    root = _mirror(tmp_path, f"{hashlib.sha256(other).hexdigest()}  file.bin\n")
    (root / "set" / "file.bin").write_bytes(other)
    md5_only = dataclasses.replace(_remote("http://127.0.0.1:9/"), sha256=None)
    with pytest.raises(ChecksumError, match="published MD5"):
        fetch(md5_only, mirror=root)


def test_a_rebuilt_mirror_file_is_checked_against_its_list_only(tmp_path, data_root):
    """exact_mirror=False (Omniglot's archives): the mirror's list decides; the loader checks
    the decoded content. The list must still match the bytes."""
    other = b"rebuilt bytes"
    root = _mirror(tmp_path, f"{hashlib.sha256(other).hexdigest()}  file.bin\n")
    (root / "set" / "file.bin").write_bytes(other)
    rebuilt = dataclasses.replace(_remote("http://127.0.0.1:9/"), exact_mirror=False)
    assert fetch(rebuilt, mirror=root) == root / "set" / "file.bin"
    (root / "set" / "file.bin").write_bytes(b"changed")
    with pytest.raises(ChecksumError, match="sha256 is"):
        fetch(rebuilt, mirror=root)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"retries": "3"}, "retries must be an int"), ({"retries": 2.5}, "retries must be an int"),
    ({"timeout": "60"}, "timeout must be"), ({"backoff": None}, "backoff must be"),
])
def test_download_argument_types(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        download(_remote("http://127.0.0.1:9/"), tmp_path / "x", **kwargs)


def test_fetch_argument_types(tmp_path, data_root):
    with pytest.raises(ValueError, match="remote must be a RemoteFile"):
        fetch("file.bin")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mirror must be a folder path"):
        fetch(_remote("http://127.0.0.1:9/"), mirror=123)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="root must be a folder path"):
        data_dir(123)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="urls must be a tuple of URL strings"):
        RemoteFile("a", "b", "http://x/a", md5="0" * 32)  # type: ignore[arg-type]
