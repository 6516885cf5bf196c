"""Shared fixtures: the local data mirror, a tiny synthetic image set, a local HTTP server."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
import torch

from companion.data import ImageClassDataset

MIRROR_ENV = "COMPANION_DATA_MIRROR"


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The local data mirror (``$COMPANION_DATA_MIRROR``; `make test` points it at ../shared/data).

    Skips when no mirror is configured (a reader's machine without the data); if a mirror *is*
    configured but broken, the test fails instead of hiding the problem.
    """
    value = os.environ.get(MIRROR_ENV)
    if not value:
        pytest.skip(f"{MIRROR_ENV} is not set (no local data mirror)")
    path = Path(value)
    assert (path / "omniglot" / "SHA256SUMS").is_file(), f"{MIRROR_ENV}={value} has no omniglot/"
    return path


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data folder, also set as the default, so tests never touch the real data/."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("COMPANION_DATA_DIR", str(root))
    return root


@pytest.fixture
def no_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MIRROR_ENV, raising=False)


def make_dataset(counts: list[int], image_size: int = 4, seed: int = 0) -> ImageClassDataset:
    """Images whose pixels encode their row index, so a test can tell which rows were drawn."""
    n = sum(counts)
    labels = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    labels = labels[perm]
    images = torch.zeros(n, 1, image_size, image_size, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(n) % 256  # row index, low byte
    images[:, 0, 0, 1] = torch.arange(n) // 256  # row index, high byte
    return ImageClassDataset(images, labels, tuple(f"class{i}" for i in range(len(counts))),
                             "synthetic")


def marks_dataset(n_classes: int = 12, per_class: int = 20) -> ImageClassDataset:
    """28x28 noise images whose class is a bright pixel at a class-specific spot: a few-shot
    problem every method should solve in seconds."""
    ds = make_dataset([per_class] * n_classes, image_size=28)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 60, ds.images.shape, dtype=torch.uint8, generator=g)
    for c in range(n_classes):
        images[ds.labels == c, 0, 2 * c + 2, 2 * c + 2] = 255
    return ImageClassDataset(images, ds.labels, ds.class_names, "marks")


@pytest.fixture
def tiny_dataset() -> ImageClassDataset:
    return make_dataset([6] * 10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[Callable[..., str]]:
    """Start HTTP servers on 127.0.0.1; ``serve(folder, handler=None) -> base URL``."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def serve(folder: Path, handler: type | None = None) -> str:
        cls = handler or _QuietHandler
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                 partial(cls, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()
