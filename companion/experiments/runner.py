"""Run a named experiment to completion: train (resumably), test, write the result file.

A run keeps a checkpoint in ``<runs>/<run id>/checkpoint.pt`` (model, optimiser, sampler and
RNG states, history), rewritten atomically every ``checkpoint_every`` steps; starting the
same command again resumes from it, so an interrupted run loses at most those steps (a
checkpoint of a different configuration is refused). ``<runs>`` is ``$COMPANION_RUNS_DIR``,
else the user cache (``$XDG_CACHE_HOME/companion/runs``, by default
``~/.cache/companion/runs``), so checkpoints survive a fresh checkout. The run id is
``<name>-seed<k>``, with ``-it<N>`` when ``--iterations`` overrides the budget (paths:
:mod:`companion.experiments.paths`; a checkpoint parked in the repository for a machine laid
anew is taken back first: :mod:`companion.experiments.park`). The result
goes to ``results/<run id>.json`` in the :func:`companion.utils.write_record` format (with the
configuration as key, device, wall time and git revision), and the trained weights to
``results/<run id>.pt``.

What to build, how to train and how to test come from the method's registered family
(:mod:`companion.experiments.registry`); this file knows no method.

Chapter: MAML (the results tables).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shlex
import shutil
import sys
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from companion.engine.checkpoint import CheckpointError
from companion.engine.distributed import any_rank, init_from_env, rank, rank_seed, world_size
from companion.experiments.configs import ExperimentConfig, get_config, same_experiment
from companion.experiments.lock import run_lock
from companion.experiments.park import parked_dir, removal, unpark
from companion.experiments.paths import (
    CHECKPOINT,
    REVISIONS,
    RUNS_ENV,
    STAMP,
    config_differences,
    different_configuration,
    result_path,
    run_dir,
    run_id,
    runs_dir,
)
from companion.experiments.prepare import prepare
from companion.experiments.registry import spec_for
from companion.training import fit
from companion.utils import (
    atomic_write,
    describe_device,
    get_device,
    git_revision,
    read_record,
    write_record,
)

__all__ = [
    "RUNS_ENV",
    "UnreadableResultError",
    "build_learner",
    "describe_threads",
    "load_or_run_experiment",
    "load_trained",
    "result_path",
    "results_dir",
    "run_command",
    "run_dir",
    "run_experiment",
    "run_id",
    "runs_dir",
    "stored_result",
]


class UnreadableResultError(ValueError):
    """A result or weights file exists but cannot be read (truncated, not a result)."""


def build_learner(cfg: ExperimentConfig, seed: int = 0) -> nn.Module:
    """The model and algorithm a configuration names (its family's registered builder)."""
    return spec_for(cfg).build(cfg, seed)


RESULTS_ENV = "COMPANION_RESULTS_DIR"
BENCHMARKS_ENV = "COMPANION_BENCHMARKS_DIR"


def _stored_folder() -> Path:
    """``companion/_stored/`` of the package that is imported (see :mod:`companion._stored`)."""
    import companion._stored

    return Path(companion._stored.__file__).resolve().parent


def _checkout() -> Path | None:
    """The repository that holds the imported package (a checkout or an editable install)."""
    checkout = _stored_folder().parents[1]  # the folder that holds companion/
    return checkout if (checkout / "pyproject.toml").is_file() else None


def results_dir() -> Path:
    """Where the stored results are, in this order: ``$COMPANION_RESULTS_DIR``; the
    repository's ``results/`` (a checkout, also under an editable install); the copy shipped in
    the installed package (``companion/_stored/results``, see :mod:`companion._stored`); else
    ``./results``. The benchmark tables: :func:`benchmarks_dir`."""
    if os.environ.get(RESULTS_ENV):
        return Path(os.environ[RESULTS_ENV])
    checkout = _checkout()
    if checkout is not None and (checkout / "results").is_dir():
        return checkout / "results"
    installed = _stored_folder() / "results"
    return installed if installed.is_dir() else Path("results")


def benchmarks_dir() -> Path:
    """Where the benchmark tables (``benchmarks/results/*.json``) are, in this order:
    ``$COMPANION_BENCHMARKS_DIR``; the repository's ``benchmarks/results/``; the copy shipped in
    the installed package (``companion/_stored/benchmarks/results``); else
    ``./benchmarks/results``. Independent of ``$COMPANION_RESULTS_DIR``: pointing the results
    elsewhere does not hide the benchmark tables."""
    if os.environ.get(BENCHMARKS_ENV):
        return Path(os.environ[BENCHMARKS_ENV])
    checkout = _checkout()
    if checkout is not None and (checkout / "benchmarks" / "results").is_dir():
        return checkout / "benchmarks" / "results"
    installed = _stored_folder() / "benchmarks" / "results"
    return installed if installed.is_dir() else Path("benchmarks") / "results"


def _fresh_results_dir() -> Path:
    """Where a fresh run's result files go: :func:`results_dir`, except when that is the copy
    inside an installed package (pip owns it, it may be read-only, and an upgrade would delete
    the files): then ``<cache>/companion/results`` beside the checkpoints (:func:`runs_dir`)."""
    stored = results_dir()
    if not os.environ.get(RESULTS_ENV) and stored == _stored_folder() / "results":
        return runs_dir().parent / "results"
    return stored


def _result_dirs() -> list[Path]:
    """The folders searched for a stored result: :func:`results_dir`, then the folder fresh
    runs write to when it differs (an installed package's earlier run=True results)."""
    return list(dict.fromkeys([results_dir(), _fresh_results_dir()]))


def load_or_run_experiment(name: str, *, seed: int = 0, run: bool = False,
                           device: str | torch.device | None = None) -> dict[str, Any]:
    """The stored result of a named experiment, or a fresh run of it if ``run`` is True.

    A stored result counts only if its key equals the registered configuration (and seed),
    so a changed hyperparameter is never answered with an old number.

    Raises:
        FileNotFoundError: no matching result and ``run`` is False; the message gives the
            command that produces it.
        UnreadableResultError: the result file exists but cannot be read (e.g. truncated);
            the message names it and the command that writes it anew.
    """
    cfg = get_config(name)
    path = result_path(cfg, seed, results_dir())
    for folder in _result_dirs():
        candidate = result_path(cfg, seed, folder)
        if candidate.is_file():
            record = _read_result(candidate, name, seed)
            if same_experiment(record["key"], cfg.key(seed)):
                return record["result"]
    if not run:
        raise FileNotFoundError(
            f"{path} is missing or was produced by another configuration; produce it with "
            f"`{run_command(name, seed=seed)}` (or pass run=True)")
    return run_experiment(cfg, seed=seed, device=device, results_dir=_fresh_results_dir())


def _read_result(path: Path, name: str, seed: int) -> dict[str, Any]:
    """A result record, or an error that names the file and how to write it anew."""
    try:
        record = read_record(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        problem: str | None = f"it is not valid JSON ({err}; truncated?)"
    else:
        problem = None if isinstance(record, dict) and {"key", "result"} <= set(record) else (
            "it has no 'key' and 'result' entries")
    if problem is not None:
        raise UnreadableResultError(
            f"cannot read the result file {path}: {problem}; write it anew with "
            f"`{run_command(name, seed=seed)}`")
    return record


def stored_result(name: str, *, seed: int = 0) -> dict[str, Any] | None:
    """The stored result of a named experiment, or None if it has not been produced for the
    current configuration (tables use this to show which runs are still missing). An
    unreadable file raises :class:`UnreadableResultError`."""
    try:
        return load_or_run_experiment(name, seed=seed, run=False)
    except FileNotFoundError:
        return None


def run_command(name: str, *, seed: int = 0) -> str:
    """The shell command that produces a named experiment's result."""
    get_config(name)  # unknown names raise
    return f"python -m companion.experiments run {name} --seed {seed}"


def load_trained(name: str, *, seed: int = 0, run: bool = False,
                 device: str | torch.device | None = None) -> nn.Module:
    """The learner of a named experiment with its trained weights (see load_or_run_experiment).

    Returns:
        The module built by :func:`build_learner`, in eval mode, on ``device`` (default CPU).
    """
    load_or_run_experiment(name, seed=seed, run=run, device=device)  # checks key / runs
    cfg = get_config(name)
    learner = build_learner(cfg, seed)
    weights = _stored_weights(cfg, seed)
    command = run_command(name, seed=seed)
    try:
        stored = torch.load(weights, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"{weights} is missing; write it with `{command}`") from None
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile) as err:
        raise UnreadableResultError(f"cannot read the weights file {weights} ({err}); write "
                                    f"it anew with `{command}`") from None
    if not isinstance(stored, dict) or not same_experiment(stored.get("key", {}), cfg.key(seed)):
        raise ValueError(f"{weights} does not hold the weights of {name} (seed {seed}); "
                         f"rerun `{command}`")
    learner.load_state_dict(stored["state_dict"])
    return learner.to(device or "cpu").eval()


def _stored_weights(cfg: ExperimentConfig, seed: int) -> Path:
    """The ``.pt`` file beside the first stored result of ``cfg`` (see :func:`_result_dirs`)."""
    for folder in _result_dirs():
        if result_path(cfg, seed, folder).is_file():
            return result_path(cfg, seed, folder).with_suffix(".pt")
    return result_path(cfg, seed, results_dir()).with_suffix(".pt")


def _is_writer() -> bool:
    """Whether this process writes checkpoints and results and takes the run lock (with
    several processes training one run, only rank 0 does)."""
    return rank() == 0


def _tasks_per_rank(cfg: ExperimentConfig) -> int:
    """The meta-batch share of each process; the whole meta-batch on a single process."""
    n = world_size()
    if cfg.meta_batch_size % n:
        raise ValueError(f"meta_batch_size={cfg.meta_batch_size} of {cfg.name} cannot be split "
                         f"evenly over {n} processes; use a number of processes that divides it")
    return cfg.meta_batch_size // n


def run_experiment(
    cfg: ExperimentConfig,
    *,
    seed: int = 0,
    device: str | torch.device | None = None,
    results_dir: str | os.PathLike[str] = "results",
    runs_dir: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    progress: bool = True,
    parked: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Train, test and record ``cfg`` with ``seed``; resumes from an existing checkpoint.

    Args:
        runs_dir: the folder for checkpoints (default: :func:`runs_dir`).
        threads: CPU threads for PyTorch during the run (restored afterwards).
        parked: a folder of parked checkpoints (:mod:`companion.experiments.park`): one of
            this run that is further along than the runs folder's is taken back, and it is
            deleted once the result is written. None: none are looked for.

    Returns:
        The result dictionary that was written (test metrics, protocol, curves, timing).
    """
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise ValueError(f"threads must be a positive int, got {threads!r}")
    previous = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        return _run(cfg, seed, device, results_dir, runs_dir, progress, parked)
    finally:
        torch.set_num_threads(previous)


def _run(cfg: ExperimentConfig, seed: int, device: str | torch.device | None,
         results_dir: str | os.PathLike[str], runs_dir: str | os.PathLike[str] | None,
         progress: bool, parked: str | os.PathLike[str] | None) -> dict[str, Any]:
    spec = spec_for(cfg)
    revision = git_revision()  # the code this process runs, whenever it finishes
    dev = init_from_env(device) or get_device(device)  # torchrun: LOCAL_RANK's device
    per_rank = _tasks_per_rank(cfg)
    # the same initial weights on every rank, each rank its own tasks
    state = prepare(cfg, seed, dev, task_seed=rank_seed(seed, rank()))
    learner, optimizer, data, validate = state.learner, state.optimizer, state.data, state.validate
    folder = run_dir(cfg, seed, runs_dir)
    spent = parked_dir(cfg, seed, parked) if parked is not None else None
    writer = _is_writer()
    if not writer:
        validate = None  # rank 0 validates; the others wait for it at the next step
    started = time.perf_counter()
    with run_lock(folder) if writer else contextlib.nullcontext():
        failure: ValueError | None = None
        revisions: list[str] = []
        if writer:
            try:
                revisions = _prepare_run_dir(cfg, seed, folder, runs_dir, parked, revision)
            except ValueError as err:  # another configuration, a bad parked copy
                failure = err
        if any_rank(failure is not None):  # every rank waits for the folder (or its error)
            raise failure or RuntimeError(f"rank 0 could not prepare {folder}; its error says "
                                          f"why")
        try:
            history = fit(learner, state.tasks, optimizer, iterations=cfg.iterations,
                          meta_batch_size=per_rank, scheduler=state.scheduler,
                          validate=validate, validate_every=cfg.val_every if validate else 0,
                          checkpoint=folder / CHECKPOINT,
                          checkpoint_every=cfg.checkpoint_every, progress=progress and writer,
                          desc=cfg.name, identity=cfg.key(seed))
        except CheckpointError as err:
            if spent is None or not spent.is_dir():
                raise
            raise CheckpointError(f"{err}; a parked copy of this run is in {spent}: "
                                  f"{removal(spent)} too, or it is taken back again") from err
        if not writer:  # rank 0 tests and writes the result
            return {"name": cfg.name, "rank": rank(), "train_seconds": round(history.seconds, 1)}
        test = spec.evaluate(cfg, learner, data, progress=progress, device=dev)
    result = {
        "name": cfg.name,
        "method": cfg.method,
        **test,
        "iterations": cfg.iterations,
        "train_seconds": round(history.seconds, 1),
        "seconds_per_iteration": round(history.seconds / cfg.iterations, 4),
        "device": describe_device(dev),
        "threads": torch.get_num_threads(),
        "training_segments": history.segments,  # which steps ran on which hardware
        "processes": world_size(),
        "validation": history.validation,
        "loss_curve": _downsample(history.loss),
        "command": _command(cfg, seed),
    }
    if writer:
        path = result_path(cfg, seed, results_dir)
        with atomic_write(path.with_suffix(".pt")) as tmp:  # the weights first, the record last
            torch.save({"key": cfg.key(seed), "state_dict": learner.state_dict()}, tmp)
        write_record(path, key=cfg.key(seed), result=result,
                     wall_time_s=time.perf_counter() - started, revision=revision,
                     git_revisions_of_run=revisions)
        if spent is not None and spent.is_dir():  # behind the finished run's last checkpoint
            shutil.rmtree(spent)
            print(f"note: removed the parked checkpoint {spent}: the result replaces it "
                  f"(commit its removal with the result)", file=sys.stderr)
    return result


def _prepare_run_dir(cfg: ExperimentConfig, seed: int, folder: Path,
                     runs: str | os.PathLike[str] | None, parked: str | os.PathLike[str] | None,
                     revision: str | None) -> list[str]:
    """On the writing process, holding the lock: refuse a folder of another configuration,
    take a parked checkpoint back if it is further along (saying so), stamp the folder with
    its configuration and log the code revision; return the revisions that trained the run."""
    key = cfg.key(seed)
    mismatch = different_configuration(folder, key)
    if mismatch:
        raise ValueError(f"{mismatch}; nothing was changed. To start afresh, delete that "
                         f"folder (`rm -r {shlex.quote(str(folder))}`), or pass another --runs "
                         f"folder")
    if parked is not None:
        found = unpark(cfg, seed, runs=runs, parked=parked)
        note = found.note(parked_dir(cfg, seed, parked)) if found else None
        if note:
            print(f"note: {note}", file=sys.stderr)
    if config_differences(folder, key) is None:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_write(folder / STAMP) as tmp:
            tmp.write_text(json.dumps(key, indent=1, sort_keys=True) + "\n")
    log = folder / REVISIONS
    revisions = log.read_text().split() if log.is_file() else []
    if str(revision) not in revisions:
        revisions.append(str(revision))
        with atomic_write(log) as tmp:
            tmp.write_text("\n".join(revisions) + "\n")
    return revisions


def describe_threads(result: Mapping[str, Any]) -> str:
    """The CPU threads (and processes) that trained a run, from its result: ``"1 thread"``,
    or for a run resumed on other hardware each part with its steps, e.g.
    ``"1 thread (415 steps), then 2 threads (1085 steps)"``.

    Result files older than ``training_segments`` give the last count only (or
    ``threads_of_run``, every count in order); steps trained before segments were recorded
    are said to be unrecorded.
    """
    segments = result.get("training_segments")
    if not segments:
        counts = [int(t) for t in result.get("threads_of_run") or [result["threads"]]]
        if len(counts) == 1:
            return _threads_label(counts[0], int(result.get("processes", 1)))
        return f"{' then '.join(map(str, counts))} threads"
    parts: list[list[Any]] = []  # [label, steps], consecutive equal labels merged
    for seg in segments:
        label = _threads_label(int(seg["threads"]), int(seg.get("processes", 1)))
        steps = int(seg["last"]) - int(seg["first"]) + 1
        if parts and parts[-1][0] == label:
            parts[-1][1] += steps
        else:
            parts.append([label, steps])
    first = int(segments[0]["first"])
    if len(parts) == 1 and first == 1:
        return str(parts[0][0])
    text = ", then ".join(f"{label} ({steps} steps)" for label, steps in parts)
    return text if first == 1 else f"steps 1-{first - 1} unrecorded, then {text}"


def _threads_label(threads: int, processes: int) -> str:
    label = f"{threads} thread{'' if threads == 1 else 's'}"
    return label if processes == 1 else f"{processes} processes x {label}"


def _downsample(values: list[float], points: int = 200) -> list[float]:
    """Window means, so a curve of any length is stored in at most ``points`` numbers."""
    if len(values) <= points:
        return [round(v, 5) for v in values]
    width = -(-len(values) // points)
    return [round(sum(values[i:i + width]) / len(values[i:i + width]), 5)
            for i in range(0, len(values), width)]


def _command(cfg: ExperimentConfig, seed: int) -> str:
    extra = f" --iterations {cfg.iterations}" if "-it" in run_id(cfg, seed) else ""
    return (f"{shlex.quote(Path(sys.executable).name)} -m companion.experiments run "
            f"{cfg.name} --seed {seed}{extra}")
