"""Run a named experiment to completion: train (resumably), test, write the result file.

A run keeps a checkpoint in ``runs/<run id>/checkpoint.pt`` (model, optimiser, sampler and
RNG states, history), rewritten atomically every ``checkpoint_every`` steps; starting the
same command again resumes from it, so an interrupted run loses at most those steps (a
checkpoint of a different configuration is refused). The run id is ``<name>-seed<k>``, with
``-it<N>`` when ``--iterations`` overrides the budget. The result goes to
``results/<run id>.json`` in the :func:`companion.utils.write_record`
format (with the configuration as key, device, wall time and git revision), and the trained
weights to ``results/<run id>.pt``.

Chapter: MAML (the results tables).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from companion.data import EpisodeBatch, EpisodeSampler, SinusoidTasks, load_omniglot
from companion.experiments.configs import ExperimentConfig, same_experiment
from companion.meta.joint import JointTraining
from companion.meta.maml import MAML, adaptation_curve
from companion.meta.matching import MatchingNetwork
from companion.meta.metric import MetricLearner
from companion.meta.protonet import PrototypicalNetwork
from companion.meta.relation import RelationNetwork
from companion.meta.reptile import Reptile
from companion.models import MLP, Conv4
from companion.training import evaluate, fit, mean_ci95
from companion.utils import (
    atomic_write,
    describe_device,
    get_device,
    git_revision,
    seed_everything,
    write_record,
)

__all__ = [
    "build_learner",
    "load_or_run_experiment",
    "load_trained",
    "result_path",
    "results_dir",
    "run_experiment",
    "run_id",
]

TEST_SEED = 2024  # every method and training seed is tested on the same episodes
VAL_SEED = 10_000
JOINT_LR_GRID = (0.001, 0.003, 0.01, 0.03, 0.1)
MATCHING_SCALE = 10.0  # Conv-4 features are non-negative: cosines in [0, 1] need a scale


def build_learner(cfg: ExperimentConfig, seed: int = 0) -> nn.Module:
    """The model and algorithm a configuration names."""
    if cfg.method == "protonet":
        return PrototypicalNetwork(Conv4(norm="batch"))
    if cfg.method in ("matching", "matching-fce"):  # cosine x 10: ReLU features (see ch. 4)
        return MatchingNetwork(Conv4(norm="batch"), embedding_dim=64,
                               fce=cfg.method == "matching-fce", scale=MATCHING_SCALE)
    if cfg.method == "relation":
        return RelationNetwork()
    if cfg.method == "joint":
        return JointTraining(MLP(1, (40, 40), 1), task="regression")
    if cfg.dataset == "sinusoid":
        model: nn.Module = MLP(1, (40, 40), 1)
        task = "regression"
    else:
        if cfg.test_n_way != cfg.n_way:
            raise ValueError("the head has n_way outputs: test_n_way must equal n_way")
        model, task = Conv4(n_classes=cfg.n_way, norm="batch_stats"), "classification"
    if cfg.method == "reptile":
        return Reptile(model, task=task, inner_lr=cfg.inner_lr, inner_steps=cfg.inner_steps,
                       inner_batch_size=cfg.inner_batch_size,
                       inner_optimizer=cfg.inner_optimizer, outer_lr=cfg.outer_lr,
                       final_outer_lr=cfg.final_outer_lr, eval_inner_steps=cfg.eval_inner_steps,
                       eval_inner_batch_size=cfg.eval_inner_batch_size, seed=seed)
    return MAML(model, task=task, inner_lr=cfg.inner_lr, inner_steps=cfg.inner_steps,
                eval_inner_steps=cfg.eval_inner_steps, first_order=cfg.method == "fomaml",
                adapt="head" if cfg.method == "anil" else "all",
                learn_inner_lr=cfg.method == "metasgd")


RESULTS_ENV = "COMPANION_RESULTS_DIR"


def results_dir() -> Path:
    """Where the stored results are, in this order: ``$COMPANION_RESULTS_DIR``; the
    repository's ``results/`` (a checkout, also under an editable install); the copy shipped in
    the installed package (``companion/_stored/results``, see :mod:`companion._stored`); else
    ``./results``. The benchmark tables are in ``results_dir().parent / "benchmarks" /
    "results"`` for the second and third."""
    if os.environ.get(RESULTS_ENV):
        return Path(os.environ[RESULTS_ENV])
    import companion._stored

    stored = Path(companion._stored.__file__).resolve().parent  # companion/_stored/
    checkout = stored.parents[1]  # the folder that holds companion/
    if (checkout / "pyproject.toml").is_file() and (checkout / "results").is_dir():
        return checkout / "results"
    installed = stored / "results"
    return installed if installed.is_dir() else Path("results")


def load_or_run_experiment(name: str, *, seed: int = 0, run: bool = False,
                           device: str | torch.device | None = None) -> dict[str, Any]:
    """The stored result of a named experiment, or a fresh run of it if ``run`` is True.

    A stored result counts only if its key equals the registered configuration (and seed),
    so a changed hyperparameter is never answered with an old number.

    Raises:
        FileNotFoundError: no matching result and ``run`` is False; the message gives the
            command that produces it.
    """
    from companion.experiments.configs import get_config
    from companion.utils import read_record

    cfg = get_config(name)
    path = result_path(cfg, seed, results_dir())
    if path.is_file():
        record = read_record(path)
        if same_experiment(record["key"], cfg.key(seed)):
            return record["result"]
    if not run:
        raise FileNotFoundError(
            f"{path} is missing or was produced by another configuration; produce it with "
            f"`{run_command(name, seed=seed)}` (or pass run=True)")
    return run_experiment(cfg, seed=seed, device=device, results_dir=results_dir())


def stored_result(name: str, *, seed: int = 0) -> dict[str, Any] | None:
    """The stored result of a named experiment, or None if it has not been produced for the
    current configuration (tables use this to show which runs are still missing)."""
    try:
        return load_or_run_experiment(name, seed=seed, run=False)
    except FileNotFoundError:
        return None


def run_command(name: str, *, seed: int = 0) -> str:
    """The shell command that produces a named experiment's result."""
    from companion.experiments.configs import get_config

    get_config(name)  # unknown names raise
    return f"python -m companion.experiments run {name} --seed {seed}"


def load_trained(name: str, *, seed: int = 0, run: bool = False,
                 device: str | torch.device | None = None) -> nn.Module:
    """The learner of a named experiment with its trained weights (see load_or_run_experiment).

    Returns:
        The module built by :func:`build_learner`, in eval mode, on ``device`` (default CPU).
    """
    from companion.experiments.configs import get_config

    load_or_run_experiment(name, seed=seed, run=run, device=device)  # checks key / runs
    cfg = get_config(name)
    learner = build_learner(cfg, seed)
    weights = result_path(cfg, seed, results_dir()).with_suffix(".pt")
    stored = torch.load(weights, map_location="cpu", weights_only=True)
    if not isinstance(stored, dict) or not same_experiment(stored.get("key", {}), cfg.key(seed)):
        raise ValueError(f"{weights} does not hold the weights of {name} (seed {seed}); "
                         f"rerun `python -m companion.experiments run {name} --seed {seed}`")
    learner.load_state_dict(stored["state_dict"])
    return learner.to(device or "cpu").eval()


def run_id(cfg: ExperimentConfig, seed: int) -> str:
    """``<name>-seed<k>``, with ``-it<N>`` when the iterations differ from the registry's."""
    from companion.experiments.configs import CONFIGS

    registered = CONFIGS.get(cfg.name)
    budget = "" if registered is not None and registered == cfg else f"-it{cfg.iterations}"
    return f"{cfg.name}{budget}-seed{seed}"


def result_path(cfg: ExperimentConfig, seed: int, results_dir: str | os.PathLike[str]) -> Path:
    return Path(results_dir) / f"{run_id(cfg, seed)}.json"


def run_experiment(
    cfg: ExperimentConfig,
    *,
    seed: int = 0,
    device: str | torch.device | None = None,
    results_dir: str | os.PathLike[str] = "results",
    runs_dir: str | os.PathLike[str] = "runs",
    threads: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train, test and record ``cfg`` with ``seed``; resumes from an existing checkpoint.

    Returns:
        The result dictionary that was written (test metrics, protocol, curves, timing).
    """
    revision = git_revision()  # the code this process runs, whenever it finishes
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    dev = get_device(device)
    seed_everything(seed)
    learner = build_learner(cfg, seed).to(dev)
    scheduler = None
    if isinstance(learner, Reptile):  # SGD at epsilon on the Reptile direction, annealed
        optimizer, scheduler = learner.outer_optimizer(cfg.iterations)
    else:
        optimizer = torch.optim.Adam(learner.parameters(), lr=cfg.outer_lr)
        if cfg.lr_halve_every:
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, cfg.lr_halve_every, 0.5)
    data = _data(cfg, dev)
    tasks, validate = _training_tasks(cfg, data, learner, seed)
    run_dir = Path(runs_dir) / run_id(cfg, seed)
    started = time.perf_counter()
    with _lock(run_dir):
        revisions = _claim_run_dir(run_dir, cfg.key(seed), revision)
        history = fit(learner, tasks, optimizer, iterations=cfg.iterations,
                      meta_batch_size=cfg.meta_batch_size, scheduler=scheduler,
                      validate=validate, validate_every=cfg.val_every if validate else 0,
                      checkpoint=run_dir / "checkpoint.pt",
                      checkpoint_every=cfg.checkpoint_every, progress=progress, desc=cfg.name)
        test = _test(cfg, data, learner, progress, dev)
    result = {
        "name": cfg.name,
        "method": cfg.method,
        **test,
        "iterations": cfg.iterations,
        "train_seconds": round(history.seconds, 1),
        "seconds_per_iteration": round(history.seconds / cfg.iterations, 4),
        "device": describe_device(dev),
        "threads": torch.get_num_threads(),
        "validation": history.validation,
        "loss_curve": _downsample(history.loss),
        "command": _command(cfg, seed),
    }
    path = result_path(cfg, seed, results_dir)
    with atomic_write(path.with_suffix(".pt")) as tmp:  # the weights first, the record last
        torch.save({"key": cfg.key(seed), "state_dict": learner.state_dict()}, tmp)
    write_record(path, key=cfg.key(seed), result=result,
                 wall_time_s=time.perf_counter() - started, revision=revision,
                 git_revisions_of_run=revisions)
    return result


def _claim_run_dir(run_dir: Path, key: dict[str, Any], revision: str | None) -> list[str]:
    """Remember which configuration a checkpoint belongs to (refusing to resume another one)
    and which code revisions have worked on it; return those revisions."""
    stamp = run_dir / "config.json"
    if stamp.is_file():
        if not same_experiment(json.loads(stamp.read_text()), key):
            raise ValueError(f"{run_dir} holds a checkpoint of a different configuration; "
                             "delete that folder to start afresh")
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_write(stamp) as tmp:
            tmp.write_text(json.dumps(key, indent=1, sort_keys=True) + "\n")
    log = run_dir / "revisions.txt"
    revisions = log.read_text().split() if log.is_file() else []
    if str(revision) not in revisions:
        revisions.append(str(revision))
        with atomic_write(log) as tmp:
            tmp.write_text("\n".join(revisions) + "\n")
    return revisions


@contextlib.contextmanager
def _lock(run_dir: Path) -> Iterator[None]:
    """Refuse to train the same run in two processes at once (exclusive create)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / "lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            holder = _lock_holder(lock)
            if holder is not None:
                raise RuntimeError(f"{run_dir} is being trained by process {holder}") from None
            lock.unlink(missing_ok=True)  # stale: its process is gone, or it is unreadable
    else:
        raise RuntimeError(f"could not take the lock {lock}")
    with os.fdopen(fd, "w") as f:
        f.write(f"{os.getpid()}\n")
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _lock_holder(lock: Path) -> int | None:
    """The pid in a lock file if that process is alive, else None (a stale lock)."""
    try:
        pid = int(lock.read_text().strip())
    except (OSError, ValueError):
        return None
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid  # alive, owned by someone else
    return pid


def _data(cfg: ExperimentConfig, device: torch.device) -> dict[str, Any]:
    if cfg.dataset == "sinusoid":
        return {"tasks": SinusoidTasks()}
    return {split: load_omniglot(split, progress=False).to(device)
            for split in ("train", "val", "test")}


def _training_tasks(cfg: ExperimentConfig, data: dict[str, Any], learner: nn.Module,
                    seed: int) -> tuple[Any, Any]:
    if cfg.dataset == "sinusoid":
        return data["tasks"].sampler(n_support=cfg.n_shot, n_query=cfg.n_query, seed=seed), None
    tasks = EpisodeSampler(data["train"], n_way=cfg.n_way, n_shot=cfg.n_shot,
                           n_query=cfg.n_query, seed=seed)

    def validate() -> Any:
        val = EpisodeSampler(data["val"], n_way=cfg.test_n_way, n_shot=cfg.test_n_shot,
                             n_query=cfg.test_n_query, seed=VAL_SEED)
        return evaluate(learner, val, n_episodes=cfg.val_episodes, progress=False)

    return tasks, (validate if cfg.val_every else None)


def _test(cfg: ExperimentConfig, data: dict[str, Any], learner: nn.Module,
          progress: bool, device: torch.device) -> dict[str, Any]:
    if cfg.dataset == "sinusoid":
        return _test_regression(cfg, data["tasks"], learner, device)
    test = EpisodeSampler(data["test"], n_way=cfg.test_n_way, n_shot=cfg.test_n_shot,
                          n_query=cfg.test_n_query, seed=TEST_SEED)
    accuracy = evaluate(learner, test, n_episodes=cfg.test_episodes, progress=progress)
    protocol: dict[str, Any] = {"dataset": "omniglot (Vinyals test split)", "n_way": cfg.test_n_way,
                "n_shot": cfg.test_n_shot, "n_query": cfg.test_n_query,
                "episodes": cfg.test_episodes}
    if isinstance(learner, MetricLearner):  # eval mode: running statistics, no transduction
        extra = {}
        for n_way, n_shot in cfg.extra_tests:
            sampler = EpisodeSampler(data["test"], n_way=n_way, n_shot=n_shot,
                                     n_query=cfg.test_n_query, seed=TEST_SEED)
            extra[f"{n_way}-way {n_shot}-shot"] = evaluate(
                learner, sampler, n_episodes=cfg.test_episodes, progress=progress).to_dict()
        return {"test": accuracy.to_dict(), "extra_tests": extra, "protocol": {
            **protocol, "test": "each query on its own (BatchNorm running statistics)"}}
    test = EpisodeSampler(data["test"], n_way=cfg.test_n_way, n_shot=cfg.test_n_shot,
                          n_query=cfg.test_n_query, seed=TEST_SEED)  # the same episodes again
    if not isinstance(learner, (MAML, Reptile)):
        raise ValueError(f"cannot test a {type(learner).__name__} on few-shot episodes")
    one_by_one = evaluate(functools.partial(learner.predict, transductive=False), test,
                          n_episodes=cfg.test_episodes, progress=progress)
    return {"test": accuracy.to_dict(), "test_non_transductive": one_by_one.to_dict(),
            "protocol": {
                **protocol, "inner_steps": cfg.eval_inner_steps,
                "test": "transductive: all queries in one batch (batch statistics of the "
                        "query set)",
                "test_non_transductive": "each query in a batch with the support set only"}}


def _test_regression(cfg: ExperimentConfig, tasks: SinusoidTasks, learner: nn.Module,
                     device: torch.device) -> dict[str, Any]:
    """MSE after 0..eval_inner_steps steps for each K in test_shots (100 query points)."""
    curves, lrs = {}, {}
    for k in cfg.test_shots:
        batch = _regression_batch(tasks, cfg.test_episodes, k, TEST_SEED + k).to(device)
        maml, lrs[k] = _adaptable(cfg, learner, tasks, k, device)
        per_task = adaptation_curve(maml, batch, cfg.eval_inner_steps)  # [tasks, steps + 1]
        curves[str(k)] = [_robust_summary(per_task[:, s]) for s in range(per_task.shape[1])]
    return {"mse_vs_steps": curves, "fine_tune_lr": {str(k): v for k, v in lrs.items()},
            "protocol": {"dataset": "sinusoid (A in [0.1, 5], phase in [0, pi], x in [-5, 5])",
                         "test_tasks": cfg.test_episodes, "query_points": 100,
                         "summary": "mean and 95% CI over tasks whose MSE stayed finite; "
                                    "median over all tasks; n_diverged = non-finite MSE",
                         "support_sizes": list(cfg.test_shots),
                         "steps": list(range(cfg.eval_inner_steps + 1))}}


def _robust_summary(values: torch.Tensor) -> dict[str, Any]:
    """Mean and 95% CI over the tasks whose error stayed finite, the median over all tasks,
    and how many diverged (non-finite error): adaptation can blow up on a rare task."""
    finite = values[torch.isfinite(values)]
    summary = mean_ci95(finite).to_dict() if len(finite) >= 2 else {
        "mean": float("nan"), "ci95": float("nan"), "n_episodes": len(finite)}
    return {**summary,
            "median": values.nan_to_num(nan=torch.inf, posinf=torch.inf).median().item(),
            "n_diverged": int(len(values) - len(finite))}


def _regression_batch(tasks: SinusoidTasks, n: int, k: int, seed: int) -> EpisodeBatch:
    batch, _ = tasks.sample(n, n_support=k, n_query=100,
                            generator=torch.Generator().manual_seed(seed))
    return batch


def _adaptable(cfg: ExperimentConfig, learner: nn.Module, tasks: SinusoidTasks, k: int,
               device: torch.device) -> tuple[MAML, float]:
    """MAML adapts with its own inner rate; joint training gets the best of a small grid,
    chosen on validation tasks (the paper's "automatically tuned step size")."""
    if isinstance(learner, MAML):
        return learner, cfg.inner_lr
    if isinstance(learner, Reptile):  # evaluated with plain SGD steps of its inner step size
        return MAML(learner.model, task="regression", inner_lr=cfg.inner_lr), cfg.inner_lr
    if not isinstance(learner, JointTraining):
        raise ValueError(f"cannot fine-tune a {type(learner).__name__}")
    model = learner.model
    val = _regression_batch(tasks, 100, k, VAL_SEED + k).to(device)
    scores = {lr: adaptation_curve(MAML(model, task="regression", inner_lr=lr), val,
                                   cfg.eval_inner_steps)[:, -1]
              .nan_to_num(nan=torch.inf, posinf=torch.inf).mean().item()
              for lr in JOINT_LR_GRID}  # a rate that diverges on any task loses
    best = min(scores, key=lambda lr: scores[lr])
    return MAML(model, task="regression", inner_lr=best), best


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
