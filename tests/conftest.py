"""Shared fixtures: the local data mirror, a tiny synthetic image set, a local HTTP server;
and a guard that no test leaves process-wide state behind."""

from __future__ import annotations

import http.server
import os
import random
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from companion.data import ImageClassDataset

pytest_plugins = ["pytester"]  # tests/test_tools.py runs the guard below on leaky tests

MIRROR_ENV = "COMPANION_DATA_MIRROR"

# Tests known to change a setting, restored here without failing until they restore it
# themselves (then delete the entry): (node id prefix, setting) -> why.
KNOWN_LEAKS: dict[tuple[str, str], str] = {}

# Environment variables that pytest and PyTorch set for themselves on first use (pytest's
# current test; torch.compile's and Triton's cache folders, and the like): not a test's doing.
LIBRARY_ENV = ("PYTEST_", "TORCH", "_TORCH", "TRITON_", "CUBLAS_", "KMP_", "CUDA_", "JAX_")


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere, reading it means setting it (tests run in one thread)
    os.umask(mask)
    return mask


def _settings() -> dict[str, Any]:
    """Process-wide settings a test must leave as it found them."""
    return {
        "torch threads": torch.get_num_threads(),
        "torch default dtype": torch.get_default_dtype(),
        "torch grad mode": torch.is_grad_enabled(),
        "torch deterministic algorithms": torch.are_deterministic_algorithms_enabled(),
        "working directory": os.getcwd(),
        "umask": _umask(),
        "environment": {k: v for k, v in os.environ.items() if not k.startswith(LIBRARY_ENV)},
    }


def _restore(name: str, value: Any) -> None:
    if name == "torch threads":
        torch.set_num_threads(value)
    elif name == "torch default dtype":
        torch.set_default_dtype(value)
    elif name == "torch grad mode":
        torch.set_grad_enabled(value)
    elif name == "torch deterministic algorithms":
        torch.use_deterministic_algorithms(value)
    elif name == "working directory":
        os.chdir(value)
    elif name == "umask":
        os.umask(value)
    elif name == "environment":  # what libraries set for themselves is left alone
        for key in set(os.environ) - set(value):
            if not key.startswith(LIBRARY_ENV):
                del os.environ[key]
        os.environ.update(value)


def _describe(name: str, before: Any, after: Any) -> str:
    if name == "environment":
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        return f"environment variables {changed}"
    if name == "umask":
        return f"umask {before:#o} -> {after:#o}"
    return f"{name} {before!r} -> {after!r}"


@pytest.fixture(autouse=True)
def _no_global_state_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that changes a process-wide setting (threads, default dtype, grad mode,
    cwd, umask, environment variables) without restoring it: use ``monkeypatch`` (undone before
    this check) or try/finally. The global random generators (torch, NumPy, ``random``) are
    restored silently: seeding them or drawing from them, e.g. to initialise a model, is
    legitimate inside a test but must not make the next test depend on the order."""
    rng = (torch.get_rng_state(), np.random.get_state(), random.getstate())  # noqa: NPY002
    before = _settings()
    yield
    after = _settings()
    torch.set_rng_state(rng[0])
    np.random.set_state(rng[1])  # noqa: NPY002 - restoring the legacy global is the point
    random.setstate(rng[2])
    leaks = []
    for name, value in before.items():
        if after[name] != value:
            _restore(name, value)
            known = any(request.node.nodeid.startswith(prefix) and name == setting
                        for prefix, setting in KNOWN_LEAKS)
            if not known:
                leaks.append(_describe(name, value, after[name]))
    if leaks:
        pytest.fail(f"{request.node.nodeid} left process-wide state behind (now restored): "
                    + "; ".join(leaks) + ". Use monkeypatch or restore it in a finally block.",
                    pytrace=False)


@pytest.fixture
def torch_seed_0() -> None:
    """Seed torch's global generator with 0 for one test (modules initialised in it are the
    same in every run); ``_no_global_state_left_behind`` restores the generator afterwards.
    A test module opts in with ``pytestmark = pytest.mark.usefixtures("torch_seed_0")``."""
    torch.manual_seed(0)


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
