"""Small helpers every chapter uses: seeding, device choice, atomic files, result caching, source.

Chapter: Concepts (setup cells of every chapter).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import pickle
import platform
import random
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

__all__ = [
    "atomic_write",
    "describe_device",
    "get_device",
    "git_revision",
    "load_or_run",
    "read_record",
    "seed_everything",
    "show_source",
    "write_record",
]

DEVICE_ENV = "COMPANION_DEVICE"
T = TypeVar("T")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's, NumPy's and PyTorch's global generators; return a fresh CPU generator.

    The global seeds make weight initialisation reproducible. Everything the library samples
    (episodes, tasks) takes the returned ``torch.Generator`` (or a ``seed=``) explicitly.

    Args:
        seed: a non-negative integer.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeding the legacy global is the point
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def get_device(device: str | torch.device | None = None) -> torch.device:
    """Choose where to compute: the argument, else ``$COMPANION_DEVICE``, else CUDA if present.

    Falls back to the CPU, never the other way round: a CUDA request on a machine without CUDA
    is an error rather than a silent CPU run.

    Raises:
        ValueError: the device string is not one PyTorch knows, or names CUDA without CUDA.
    """
    chosen = device if device is not None else os.environ.get(DEVICE_ENV) or None
    if chosen is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(chosen)
    except RuntimeError as err:
        raise ValueError(f"device={chosen!r} is not a device PyTorch knows ({err})") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={chosen!r} was requested but CUDA is not available here")
    return dev


def describe_device(device: torch.device | str) -> str:
    """A human-readable device description for result tables, e.g. 'cpu (2 threads, x86_64)'."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    return f"cpu ({torch.get_num_threads()} threads, {platform.machine()})"


@contextlib.contextmanager
def atomic_write(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` if the block succeeds.

    Readers never see a half-written file, and a failure leaves nothing behind.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_file_beside(target)
    try:
        yield tmp
        with open(tmp, "rb") as written:  # on disk before the rename, not only in a cache
            os.fsync(written.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _new_file_beside(target: Path) -> Path:
    """Create a new, empty, hidden file in ``target``'s folder and return its path.

    It is opened with mode 0o666 and ``O_EXCL``, so the kernel applies the process umask (and
    any default ACL) exactly as for a file that ``open(target, "w")`` creates, without the
    process umask ever being read or changed (``os.umask`` can only be read by setting it,
    which races with other threads).
    """
    for _ in range(100):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:  # a name another writer drew: draw again
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"could not create a temporary file beside {target}")


def git_revision(cwd: str | os.PathLike[str] | None = None) -> str | None:
    """The current git commit, with '+dirty' if any tracked file of the repository other than
    under ``results/``, ``runs/`` and ``parked/`` (checkpoints parked for another machine) has
    uncommitted changes; None outside a checkout."""
    where = Path(cwd) if cwd is not None else Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(  # changed tracked files, apart from results and checkpoints
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ":(top)",
             ":(exclude,top)results", ":(exclude,top)runs", ":(exclude,top)parked"],
            cwd=where, capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return rev + ("+dirty" if dirty else "")


def load_or_run(
    path: str | os.PathLike[str],
    fn: Callable[[], T],
    *,
    key: Mapping[str, Any],
    rerun: bool = False,
) -> T:
    """Return the result stored at ``path`` if it was produced with the same ``key``; else run.

    Use it for results a CPU reader should not have to recompute. The stored file records the
    key (the configuration), when and where it was produced, the wall time and the git revision,
    so a cached number always carries its provenance.

    Args:
        path: ``.json`` for JSON-serialisable results (returned as JSON would give them back:
            tuples become lists, dict keys strings), ``.pt`` for tensors in dicts, lists and
            tuples with plain values (what ``torch.load(weights_only=True)`` reads back).
        fn: computes the result; called only on a miss.
        key: the configuration that determines the result (JSON-serialisable). A different key
            is a miss, so changing a hyperparameter never returns a stale result.
        rerun: ignore the stored result and recompute.

    Returns:
        The (loaded or freshly computed) result.
    """
    path = _check_record_path(path)
    key_json = json.loads(json.dumps(dict(key), sort_keys=True))  # also checks serialisability
    if path.is_file() and not rerun:
        record = read_record(path)
        if record.get("key") == key_json:
            return record["result"]
    start = time.perf_counter()
    result = fn()
    if path.suffix == ".json":  # return what a later load returns (tuples -> lists, ...)
        result = json.loads(json.dumps(result))
    write_record(path, key=key_json, result=result, wall_time_s=time.perf_counter() - start)
    return result


def _check_record_path(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if path.suffix not in (".json", ".pt"):
        raise ValueError(f"path must end in .json or .pt, got {path.name!r}")
    return path


def write_record(path: str | os.PathLike[str], *, key: Mapping[str, Any], result: Any,
                 wall_time_s: float, revision: str | None = None, **extra: Any) -> None:
    """Store ``result`` with its provenance (key, time, git revision, versions), atomically.

    The format :func:`load_or_run` reads; experiment commands write it too, so a notebook can
    load their results.

    Args:
        revision: the git revision of the code that computed ``result``; default: the
            current one. Long runs pass the revision they started with.

    Raises:
        ValueError: a ``.pt`` record holds values :func:`read_record` would refuse (anything
            but tensors, dicts, lists, tuples and plain values); nothing is written then.
    """
    path = _check_record_path(path)
    record = {
        "key": json.loads(json.dumps(dict(key), sort_keys=True)),
        "result": result,
        "wall_time_s": round(wall_time_s, 3),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git_revision": revision if revision is not None else git_revision(),
        "torch": str(torch.__version__),  # a plain str: TorchVersion is no weights-only type
        "platform": platform.platform(),
        **extra,
    }
    with atomic_write(path) as tmp:
        if path.suffix == ".json":
            tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        else:
            torch.save(record, tmp)
            _load_plain(tmp, name=path)  # never store a record read_record would refuse


def read_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a record written by :func:`write_record` (``.json`` or ``.pt``).

    A ``.pt`` record is read with ``torch.load(..., weights_only=True)``: tensors, dicts,
    lists, tuples, strings and numbers only, so opening a result file someone sent you never
    runs code hidden in it.

    Raises:
        ValueError: a ``.pt`` file holds anything else (another kind of pickle, or a crafted one).
    """
    path = _check_record_path(path)
    if path.suffix == ".json":
        return json.loads(path.read_text())
    return _load_plain(path, name=path)


def _load_plain(path: Path, *, name: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = [ln.strip() for ln in str(err).splitlines() if "Unsupported global" in ln]
        raise ValueError(
            f"{name} holds objects other than tensors, containers (dict, list, tuple) and plain "
            f"values (str, int, float, bool, None); records are read with "
            f"torch.load(weights_only=True), which refuses to run the code a pickle can carry. "
            f"Store only such values (e.g. floats instead of NumPy scalars)"
            + (f" ({found[0].split('. Please')[0]})" if found else "")
        ) from err


def show_source(obj: object) -> Any:
    """Display the real source of a library object in a notebook (syntax highlighted).

    The book shows code this way so that what a reader sees is exactly what runs.
    Returns an ``IPython.display.Code`` object when IPython is present, else the source string.
    """
    source = inspect.getsource(obj)  # type: ignore[arg-type]
    try:
        from IPython.display import Code
    except ImportError:  # pragma: no cover - IPython ships with every notebook install
        return source
    return Code(source, language="python")
