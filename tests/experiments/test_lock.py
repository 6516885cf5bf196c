"""The run lock: taken atomically with its owner, stale locks broken, live ones refused."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from companion.experiments import lock as lock_module
from companion.experiments.lock import LockHeldError, run_lock

HOST = socket.gethostname()


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_lock_holds_its_owner_from_the_start_and_is_released(tmp_path):
    with run_lock(tmp_path / "run"):
        assert (tmp_path / "run" / "lock").read_text() == f"{os.getpid()} {HOST}\n"
        assert [p.name for p in (tmp_path / "run").iterdir()] == ["lock"]  # no temp files left
    assert not (tmp_path / "run" / "lock").exists()


def test_a_live_lock_is_refused(tmp_path):
    with run_lock(tmp_path), pytest.raises(LockHeldError, match=f"process {os.getpid()} "):
        with run_lock(tmp_path):
            pass
    assert not (tmp_path / "lock").exists()


def test_a_lock_held_by_another_live_process_is_refused_and_kept(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "lock").write_text(f"{child.pid} {HOST}\n")
        with pytest.raises(LockHeldError, match="if no such process is running, delete "):
            with run_lock(tmp_path):
                pass
        assert (tmp_path / "lock").read_text() == f"{child.pid} {HOST}\n"
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("text", ["{pid} {host}\n", "{pid}\n"])  # new and old formats
def test_a_stale_lock_of_a_dead_process_is_taken(tmp_path, text):
    (tmp_path / "lock").write_text(text.format(pid=_dead_pid(), host=HOST))
    with run_lock(tmp_path):
        assert (tmp_path / "lock").read_text() == f"{os.getpid()} {HOST}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_unreadable_locks_are_stale_once_old_enough(tmp_path):
    for text in ("", "garbage", "0"):
        (tmp_path / "lock").write_text(text)
        old = time.time() - 60
        os.utime(tmp_path / "lock", (old, old))
        with run_lock(tmp_path):
            pass
    (tmp_path / "lock").write_text("")  # just created: perhaps still being written
    with pytest.raises(LockHeldError), run_lock(tmp_path):
        pass


def test_a_lock_from_another_host_cannot_be_checked_and_counts_as_live(tmp_path):
    (tmp_path / "lock").write_text(f"{_dead_pid()} not-{HOST}\n")
    with pytest.raises(LockHeldError, match=f"not-{HOST}"), run_lock(tmp_path):
        pass


def test_breaking_a_stale_lock_never_removes_a_fresh_one(tmp_path):
    """Two processes found the same stale lock; the first replaced it with its own before
    the second got to break it: the second must leave the fresh lock in place."""
    fresh = f"{os.getpid()} {HOST}\n"
    (tmp_path / "lock").write_text(fresh)
    lock_module._break(tmp_path / "lock", seen=f"{_dead_pid()} {HOST}\n")
    assert (tmp_path / "lock").read_text() == fresh
    assert [p.name for p in tmp_path.iterdir()] == ["lock"]


def test_a_released_lock_that_another_process_took_is_not_removed(tmp_path):
    with run_lock(tmp_path):
        (tmp_path / "lock").write_text(f"12345 not-{HOST}\n")  # broken and retaken meanwhile
    assert (tmp_path / "lock").read_text() == f"12345 not-{HOST}\n"


RACER = """
import os, sys, time
from pathlib import Path
from companion.experiments.lock import LockHeldError, run_lock
folder, log = Path(sys.argv[1]), Path(sys.argv[2])
(log.parent / f"ready-{os.getpid()}").write_text("")
while not (log.parent / "go").exists():
    time.sleep(0.01)
try:
    with run_lock(folder):
        with open(log, "a") as f:
            f.write(f"in {os.getpid()}\\n")
        time.sleep(0.5)
        with open(log, "a") as f:
            f.write(f"out {os.getpid()}\\n")
except LockHeldError:
    pass
"""


@pytest.mark.slow
def test_processes_racing_for_a_stale_lock_never_hold_it_together(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "lock").write_text(f"{_dead_pid()} {HOST}\n")
    log = tmp_path / "out" / "log.txt"
    log.parent.mkdir()
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(tmp_path), str(log)],
                               cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
              for _ in range(4)]
    deadline = time.monotonic() + 120
    while len(list(log.parent.glob("ready-*"))) < len(racers) and time.monotonic() < deadline:
        time.sleep(0.05)
    (log.parent / "go").write_text("")  # all imported: now they race
    for racer in racers:
        assert racer.wait(timeout=120) == 0
    lines = log.read_text().split("\n")[:-1]
    assert lines and len(lines) % 2 == 0
    for enter, leave in zip(lines[::2], lines[1::2], strict=True):  # never two inside at once
        assert enter.startswith("in ") and leave == "out " + enter[3:]
