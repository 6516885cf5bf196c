"""Park an unfinished run's checkpoint in the repository, and take it back on another machine.

Checkpoints live outside the checkout (:func:`~companion.experiments.runner.runs_dir`, the
user cache by default), which survives a fresh clone but not a machine that is laid anew
whole, as CI runners and cloud sandboxes are. For those, ``park`` copies a run's folder
(``checkpoint.pt``, ``config.json``, ``revisions.txt``) to ``parked/<run id>/`` in the
working tree, where it can be committed; ``run`` on a machine whose runs folder has no
checkpoint of that run takes the parked copy back and resumes from it, and deletes the parked
copy once the result is written (the result and weights replace it).

    python -m companion.experiments park maml-omniglot-20w5s --seed 0   # then git add parked/
    python -m companion.experiments run maml-omniglot-20w5s --seed 0    # elsewhere: resumes

A parked folder is checked before it is used: its configuration must be the run's, and its
checkpoint must load with ``weights_only=True`` (it is data, never code).

Chapter: Appendix (reproducing the results).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import torch

from companion.experiments.configs import ExperimentConfig, key_differences, same_experiment
from companion.experiments.runner import run_dir, run_id
from companion.utils import atomic_write

__all__ = ["PARKED_DIR", "ParkError", "checkpoint_step", "park", "parked_dir", "unpark"]

PARKED_DIR = "parked"  # relative to the working directory, like ``results/``
FILES = ("checkpoint.pt", "config.json", "revisions.txt")


class ParkError(ValueError):
    """A run folder that cannot be parked or taken back (missing, unreadable, another run)."""


def parked_dir(cfg: ExperimentConfig, seed: int,
               parked: str | os.PathLike[str] = PARKED_DIR) -> Path:
    """Where ``park`` puts a run's folder: ``<parked>/<run id>``."""
    return Path(parked) / run_id(cfg, seed)


def checkpoint_step(folder: Path) -> int:
    """The number of finished training steps in ``folder/checkpoint.pt``.

    Raises:
        ParkError: the file is missing, unreadable or has no step count.
    """
    path = folder / "checkpoint.pt"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ParkError(f"{path} does not exist") from None
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile) as err:
        raise ParkError(f"cannot read the checkpoint {path} ({err})") from None
    step = state.get("iteration") if isinstance(state, dict) else None
    if not isinstance(step, int) or isinstance(step, bool):
        raise ParkError(f"{path} is not a training checkpoint (it has no step count)")
    return step


def _check_config(folder: Path, cfg: ExperimentConfig, seed: int) -> None:
    path = folder / "config.json"
    try:
        stored = json.loads(path.read_text())
    except FileNotFoundError:
        raise ParkError(f"{path} does not exist; {folder} is not a run folder") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ParkError(f"cannot read {path} ({err})") from None
    if not isinstance(stored, dict) or not same_experiment(stored, cfg.key(seed)):
        differ = key_differences(stored, cfg.key(seed)) if isinstance(stored, dict) else []
        raise ParkError(f"{folder} holds a run of a different configuration (differing in "
                        f"{', '.join(differ) or 'its format'}), not {run_id(cfg, seed)}")


def _copy_folder(source: Path, target: Path) -> None:
    """Copy the run files of ``source`` into ``target``, each atomically, the checkpoint last
    (a copy cut short leaves no checkpoint that looks whole)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in sorted(FILES, key=lambda n: n == "checkpoint.pt"):
        if (source / name).is_file():
            with atomic_write(target / name) as tmp:
                shutil.copyfile(source / name, tmp)


def park(cfg: ExperimentConfig, seed: int = 0, *, runs: str | os.PathLike[str] | None = None,
         parked: str | os.PathLike[str] = PARKED_DIR) -> tuple[Path, int]:
    """Copy the run folder of ``cfg`` (under ``runs``, default the user cache) to
    ``<parked>/<run id>``; return that folder and the checkpoint's step.

    Raises:
        ParkError: there is no readable checkpoint of this configuration to park.
    """
    source = run_dir(cfg, seed, runs)
    _check_config(source, cfg, seed)
    step = checkpoint_step(source)
    target = parked_dir(cfg, seed, parked)
    _copy_folder(source, target)
    return target, step


def unpark(cfg: ExperimentConfig, seed: int = 0, *, runs: str | os.PathLike[str] | None = None,
           parked: str | os.PathLike[str] = PARKED_DIR) -> int | None:
    """Take a parked run folder back into the runs folder when that has no checkpoint of the
    run; return the step it resumes from, or None when nothing was taken (no parked copy, or
    the runs folder already has a checkpoint, which is then the one used).

    Raises:
        ParkError: the parked copy is of another configuration or unreadable (nothing is
            copied).
    """
    source = parked_dir(cfg, seed, parked)
    target = run_dir(cfg, seed, runs)
    if not source.is_dir() or (target / "checkpoint.pt").exists():
        return None
    _check_config(source, cfg, seed)
    step = checkpoint_step(source)
    _copy_folder(source, target)
    return step
