"""Park an unfinished run's checkpoint in the repository, and take it back on another machine.

Checkpoints live outside the checkout (:func:`~companion.experiments.paths.runs_dir`, the user
cache by default), which survives a fresh clone but not a machine that is laid anew whole, as
CI runners and cloud sandboxes are. For those, ``park`` copies a run's folder
(``checkpoint.pt``, ``config.json``, ``revisions.txt``) to ``parked/<run id>/`` in the working
directory, where it can be committed; ``run`` takes the parked copy back when it is further
along than the runs folder's own checkpoint (or that has none), and deletes it once the result
is written (the result and weights replace it). Each park that is committed adds the
checkpoint's size (about 1.4 MB for a Conv-4 MAML) to the repository's history for good.

    python -m companion.experiments park maml-omniglot-20w5s --seed 0   # then git add parked/
    python -m companion.experiments run maml-omniglot-20w5s --seed 0    # elsewhere: resumes

A parked folder is checked before it is used: its configuration stamp must be the run's, and
its checkpoint must be readable by the training loop (``weights_only=True``: data, never code).

Chapter: Appendix (reproducing the results).
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path
from typing import NamedTuple

from companion.engine.checkpoint import CheckpointError, read_checkpoint
from companion.experiments.configs import ExperimentConfig
from companion.experiments.paths import (
    CHECKPOINT,
    REVISIONS,
    STAMP,
    config_differences,
    different_configuration,
    run_dir,
    run_id,
)
from companion.utils import atomic_write

__all__ = ["PARKED_DIR", "ParkError", "Unparked", "checkpoint_step", "park", "parked_dir",
           "removal", "unpark"]

PARKED_DIR = "parked"  # relative to the working directory, like ``results/``
FILES = (STAMP, REVISIONS, CHECKPOINT)  # the checkpoint last


class ParkError(ValueError):
    """A run folder that cannot be parked or taken back (missing, unreadable, another run)."""


class Unparked(NamedTuple):
    """What :func:`unpark` found: the parked copy's step, the runs folder's step before
    (None: no checkpoint there), and whether the parked copy was taken."""

    parked_step: int
    local_step: int | None
    taken: bool

    def note(self, parked: Path) -> str | None:
        """What a run should say about it (None: the two are at the same step)."""
        if self.taken:
            since = "" if self.local_step is None else (
                f", further along than the runs folder's checkpoint at step {self.local_step}")
            return f"resuming from the parked checkpoint {parked} (step {self.parked_step}{since})"
        if self.parked_step == self.local_step:
            return None
        return (f"the parked checkpoint {parked} (step {self.parked_step}) is behind the runs "
                f"folder's (step {self.local_step}), which is used: `park` again to update the "
                f"committed copy (it is removed when the run finishes)")


def parked_dir(cfg: ExperimentConfig, seed: int,
               parked: str | os.PathLike[str] = PARKED_DIR) -> Path:
    """Where ``park`` puts a run's folder: ``<parked>/<run id>``."""
    return Path(parked) / run_id(cfg, seed)


def checkpoint_step(folder: Path) -> int:
    """The number of finished training steps in ``folder/checkpoint.pt``.

    Raises:
        ParkError: the file is missing, or not a checkpoint the training loop can read.
    """
    path = folder / CHECKPOINT
    if not path.is_file():
        raise ParkError(f"{path} does not exist")
    try:
        step = read_checkpoint(path)["iteration"]
    except CheckpointError as err:
        raise ParkError(str(err)) from None
    if not isinstance(step, int) or isinstance(step, bool):
        raise ParkError(f"{path} has no step count; it is not a training checkpoint")
    return step


def park(cfg: ExperimentConfig, seed: int = 0, *, runs: str | os.PathLike[str] | None = None,
         parked: str | os.PathLike[str] = PARKED_DIR, force: bool = False) -> tuple[Path, int]:
    """Copy the run folder of ``cfg`` (under ``runs``, default the user cache) to
    ``<parked>/<run id>``, replacing an earlier parked copy; return that folder and the
    checkpoint's step.

    Raises:
        ParkError: no readable checkpoint of this configuration to park, or the parked copy
            already there is further along (unless ``force``).
    """
    source = run_dir(cfg, seed, runs)
    target = parked_dir(cfg, seed, parked)
    _check_stamp(source, cfg, seed, _no_run_hint(source, cfg))
    if not (source / CHECKPOINT).is_file():
        raise ParkError(f"{source} has no checkpoint yet: a run writes its first one after "
                        f"{cfg.checkpoint_every} steps")
    step = checkpoint_step(source)
    if target.is_dir() and not force:
        keep = _reason_to_keep(target, cfg, seed, step)
        if keep:
            raise ParkError(f"{keep}; nothing was changed (force=True / --force replaces it)")
    _copy_folder(source, target)
    return target, checkpoint_step(target)  # what was copied (a running run moves on)


def _reason_to_keep(target: Path, cfg: ExperimentConfig, seed: int, step: int) -> str | None:
    """Why an earlier parked copy should not be replaced by one at ``step``, if it should not:
    it is of a different configuration, or further along. A broken copy is replaced."""
    try:
        mismatch = different_configuration(target, cfg.key(seed))
        earlier = checkpoint_step(target)
    except (ValueError, ParkError):
        return None
    if mismatch:
        return mismatch
    if earlier > step:
        return f"{target} is at step {earlier}, further along than the run's (step {step})"
    return None


def unpark(cfg: ExperimentConfig, seed: int = 0, *, runs: str | os.PathLike[str] | None = None,
           parked: str | os.PathLike[str] = PARKED_DIR) -> Unparked | None:
    """Take the parked copy of a run back into its runs folder when that has no checkpoint or
    an earlier one (a later one is kept). Hold the run's lock while calling it.

    Returns:
        None when nothing is parked, else what was found and done (:class:`Unparked`).

    Raises:
        ParkError: the parked copy is of another configuration or unreadable (nothing is
            copied; the message says how to remove it).
    """
    source = parked_dir(cfg, seed, parked)
    if not source.is_dir():
        return None
    _check_stamp(source, cfg, seed, removal(source))
    try:
        step = checkpoint_step(source)
    except ParkError as err:
        raise ParkError(f"the parked copy cannot be used: {err}. Park it again from the "
                        f"machine that trained it, or {removal(source)}") from None
    target = run_dir(cfg, seed, runs)
    try:
        local = checkpoint_step(target) if (target / CHECKPOINT).is_file() else None
    except ParkError as err:
        raise ParkError(f"{err}; deleting it resumes from the parked copy at step {step} "
                        f"instead") from None
    taken = local is None or step > local
    if taken:
        _copy_folder(source, target)
    return Unparked(step, local, taken)


def removal(folder: Path) -> str:
    """How to remove a parked copy: ``rm -r``, or ``git rm -r`` once it is committed."""
    quoted = shlex.quote(str(folder))
    return f"remove it (`rm -r {quoted}`, or `git rm -r {quoted}` once committed)"


def _check_stamp(folder: Path, cfg: ExperimentConfig, seed: int, remedy: str) -> None:
    try:
        stamped = config_differences(folder, cfg.key(seed)) is not None
        mismatch = different_configuration(folder, cfg.key(seed))
    except ValueError as err:
        raise ParkError(f"{err}; {remedy}") from None
    if not stamped:
        raise ParkError(f"{folder} is not a run folder (it has no {STAMP}); {remedy}")
    if mismatch:
        raise ParkError(f"{mismatch} than {cfg.name} (seed {seed}) has now; {remedy}")


def _no_run_hint(folder: Path, cfg: ExperimentConfig) -> str:
    """What to do when ``folder`` is not the run's folder: the runs that are there."""
    there = sorted(p.name for p in folder.parent.glob(f"{cfg.name}-*") if p.is_dir())
    return (f"give `park` the same --seed, --iterations and --runs as `run` "
            f"(runs of {cfg.name} in {folder.parent}: {', '.join(there) or 'none'})")


def _copy_folder(source: Path, target: Path) -> None:
    """Copy the run files of ``source`` over those of ``target``, each atomically, the
    checkpoint last (a copy cut short leaves no checkpoint newer than its stamp)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        if (source / name).is_file():
            with atomic_write(target / name) as tmp:
                shutil.copyfile(source / name, tmp)
        else:
            (target / name).unlink(missing_ok=True)  # no stale file from an earlier copy
