"""A lock file that keeps two processes from training the same run at once.

The lock appears atomically with its owner in it: the owner's ``<pid> <host>`` is written to
a private temporary file, which is then hard-linked to ``lock`` (``os.link`` never replaces
an existing file). So no process ever reads an empty lock of a live owner. A lock whose
process is gone (same host, no such pid) is stale and is broken; a live one is refused.
A lock from another host cannot be checked and counts as live; neither can a process on
Windows (where probing a pid would kill it). Breaking a stale lock renames it away first and
puts it back if it turns out to be another process's fresh lock, so two processes that both
found the same stale lock cannot both win.

Chapter: MAML (results of longer runs).
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["LockHeldError", "run_lock"]

YOUNG_S = 10.0  # an unreadable lock younger than this may still be being written


class LockHeldError(RuntimeError):
    """The run is being trained by another live process."""


def _owner_text() -> str:
    return f"{os.getpid()} {socket.gethostname()}\n"


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir/lock`` for the duration of the block.

    Raises:
        LockHeldError: a live process holds the lock (the message names it and says how to
            remove a lock whose process is known to be gone).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / "lock"
    mine = _owner_text()
    for _ in range(5):
        if _place(lock, mine):
            break
        seen = _read(lock)
        if seen is None:
            continue  # released meanwhile: try again
        if _live(seen, lock):
            raise LockHeldError(
                f"{run_dir} is being trained by process {seen.strip() or '(unknown)'}; wait "
                f"for it to finish, or, if no such process is running, delete {lock}")
        _break(lock, seen)
    else:
        raise LockHeldError(f"could not take the lock {lock} (other processes keep taking it)")
    try:
        yield
    finally:
        if _read(lock) == mine:
            lock.unlink(missing_ok=True)


def _place(lock: Path, text: str) -> bool:
    """Create ``lock`` holding ``text`` unless it exists; whether it was created."""
    fd, name = tempfile.mkstemp(dir=lock.parent, prefix=".lock.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        try:
            os.link(tmp, lock)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: exclusive create, then write
            try:
                out = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(out, "w") as f:
                f.write(text)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _read(lock: Path) -> str | None:
    try:
        return lock.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return ""


def _live(text: str, lock: Path) -> bool:
    """Whether the owner recorded in a lock's ``text`` may still be running."""
    parts = text.split()
    try:
        pid = int(parts[0])
    except (IndexError, ValueError):  # unreadable: stale unless it may be being written
        try:
            return time.time() - lock.stat().st_mtime < YOUNG_S
        except FileNotFoundError:
            return False
    host = parts[1] if len(parts) > 1 else socket.gethostname()  # old locks: pid only
    if pid <= 0:
        return False
    if host != socket.gethostname() or os.name == "nt":
        return True  # cannot be checked from here
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True


def _break(lock: Path, seen: str) -> None:
    """Remove a stale lock holding ``seen``, but never another process's fresh lock."""
    grave = lock.with_name(f".lock.stale.{os.getpid()}.{time.monotonic_ns()}")
    try:
        os.rename(lock, grave)
    except FileNotFoundError:
        return  # someone else broke it
    try:
        if _read(grave) != seen:  # a fresh lock replaced the stale one meanwhile: restore
            with contextlib.suppress(OSError):  # FileExistsError: a third process took it
                os.link(grave, lock)
    finally:
        grave.unlink(missing_ok=True)
