"""Checkpoints of a training run: everything needed to resume it exactly, and nothing that runs.

A checkpoint holds the learner's state, every optimiser's and scheduler's state, the random
generators of the data source and of the learner, the global CPU/CUDA generators, the history
so far, and the run's *identity* (the learner's class plus whatever the caller passes, e.g.
an experiment's configuration). With several processes, rank 0 writes one file holding every
rank's generators; each rank restores its own.

Loading uses ``torch.load(..., weights_only=True)``: a checkpoint is data (tensors, numbers,
strings, lists, dicts) and never executes code. A file that cannot be read, or that belongs
to another run, raises :class:`CheckpointError` naming the file and how to start afresh; it is
never deleted.

Chapter: Appendix (training at scale); used by :func:`companion.fit`.
"""

from __future__ import annotations

import json
import pickle
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from companion.engine.distributed import all_gather_objects, rank
from companion.utils import atomic_write

__all__ = ["FORMAT", "CheckpointError", "load_checkpoint", "read_checkpoint", "run_identity",
           "save_checkpoint"]

FORMAT = 2


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed: unreadable, truncated, or of another run."""


def run_identity(learner: nn.Module, identity: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: the learner's class, its parameter names
    and shapes, and the caller's ``identity`` (JSON-serialisable)."""
    try:
        extra = json.loads(json.dumps(dict(identity or {}), sort_keys=True))
    except (TypeError, ValueError) as err:
        raise ValueError(f"identity must be JSON-serialisable, got {identity!r}") from err
    shapes = {k: list(v.shape) for k, v in learner.state_dict().items()}
    return {"learner": type(learner).__qualname__, "shapes": shapes, **extra}


def _rank_state(generators: Sequence[torch.Generator],
                learner_generator: torch.Generator | None) -> dict[str, Any]:
    return {
        "data_generators": [g.get_state() for g in generators],
        "learner_generator": learner_generator.get_state() if learner_generator else None,
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def save_checkpoint(path: Path, *, iteration: int, history: dict[str, Any],
                    identity: dict[str, Any], learner: nn.Module,
                    optimizers: Sequence[torch.optim.Optimizer], schedulers: Sequence[Any],
                    generators: Sequence[torch.Generator],
                    learner_generator: torch.Generator | None) -> None:
    """Write the checkpoint atomically (rank 0 only; every rank must call it)."""
    ranks = all_gather_objects(_rank_state(generators, learner_generator))
    if rank() != 0:
        return
    state = {
        "format": FORMAT,
        "identity": identity,
        "iteration": iteration,
        "history": history,
        "learner": learner.state_dict(),
        "optimizers": [o.state_dict() for o in optimizers],
        "schedulers": [s.state_dict() if s is not None else None for s in schedulers],
        "ranks": ranks,
    }
    with atomic_write(path) as tmp:
        torch.save(state, tmp)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The stored state of a checkpoint, read as data (``weights_only=True``).

    Raises:
        CheckpointError: unreadable, truncated, or not of this version's format.
    """
    afresh = f"delete {path} (or choose another checkpoint path) to start afresh"
    try:
        with warnings.catch_warnings():  # a foreign pickle may warn before it is refused
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (EOFError, OSError, RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile,
            ValueError, KeyError, AttributeError) as err:
        reason = (str(err).splitlines() or [""])[0][:120]  # not torch's advice to unpickle
        raise CheckpointError(f"checkpoint {path} is corrupt, truncated or not a checkpoint "
                              f"({type(err).__name__}: {reason}); {afresh}") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a checkpoint of this version of the library's "
                              f"training loop; {afresh}")
    return state


def load_checkpoint(path: Path, *, identity: dict[str, Any], learner: nn.Module,
                    optimizers: Sequence[torch.optim.Optimizer], schedulers: Sequence[Any],
                    generators: Sequence[torch.Generator],
                    learner_generator: torch.Generator | None, n_ranks: int
                    ) -> tuple[int, dict[str, Any]]:
    """Restore every state from ``path`` into the given objects; return (iteration, history).

    Raises:
        CheckpointError: unreadable file, another run's checkpoint (identity, number of
            optimisers, schedulers, generators or processes differ).
    """
    state = read_checkpoint(path)
    afresh = f"delete {path} (or choose another checkpoint path) to start afresh"
    if state["identity"] != identity:
        mine, theirs = identity, state["identity"]
        diff = sorted(k for k in {*mine, *theirs} if mine.get(k) != theirs.get(k))
        raise CheckpointError(f"checkpoint {path} belongs to another run (its identity differs "
                              f"in {diff}); {afresh}")
    counts = {"optimizers": (len(state["optimizers"]), len(optimizers)),
              "schedulers": (len(state["schedulers"]), len(schedulers)),
              "processes": (len(state["ranks"]), n_ranks)}
    for what, (stored, given) in counts.items():
        if stored != given:
            raise CheckpointError(f"checkpoint {path} was written with {stored} {what}, this "
                                  f"run has {given}; resume it with the same setting, or "
                                  f"{afresh}")
    for scheduler, stored in zip(schedulers, state["schedulers"], strict=True):
        if (scheduler is None) != (stored is None):
            raise CheckpointError(f"checkpoint {path} {'has no' if stored is None else 'has a'}"
                                  f" scheduler state but this run has "
                                  f"{'one' if stored is None else 'none'}: its learning-rate "
                                  f"schedule would not continue; {afresh}")
    mine_state = state["ranks"][rank()]
    if len(mine_state["data_generators"]) != len(generators):
        raise CheckpointError(f"checkpoint {path} has {len(mine_state['data_generators'])} "
                              f"data generators, this run's data source has {len(generators)};"
                              f" {afresh}")
    learner.load_state_dict(state["learner"])
    for optimizer, stored in zip(optimizers, state["optimizers"], strict=True):
        optimizer.load_state_dict(stored)
    for scheduler, stored in zip(schedulers, state["schedulers"], strict=True):
        if scheduler is not None:
            scheduler.load_state_dict(stored)
    for generator, stored in zip(generators, mine_state["data_generators"], strict=True):
        generator.set_state(stored)
    if learner_generator is not None and mine_state["learner_generator"] is not None:
        learner_generator.set_state(mine_state["learner_generator"])
    torch.set_rng_state(mine_state["torch_rng"])
    if mine_state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(mine_state["cuda_rng"])
    return int(state["iteration"]), state["history"]
