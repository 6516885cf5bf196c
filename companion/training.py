"""The one train/evaluate loop every chapter uses.

* :func:`evaluate` runs a learner on ``n_episodes`` test episodes (600 by default, as in the
  papers) and reports mean accuracy with a 95% confidence interval.
* :func:`fit` meta-trains any learner that exposes ``meta_loss(batch) -> (loss, metrics)``,
  with optional periodic validation and checkpoints from which an interrupted run resumes
  (model, optimiser, scheduler, task-sampler, learner, CPU and CUDA RNG states). On a CPU
  the resumed run is bit-identical to an uninterrupted one; on a GPU it is as reproducible
  as the GPU kernels are (see ``torch.use_deterministic_algorithms``).

Chapter: Concepts (first experiment); used by every later chapter.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast, runtime_checkable

import torch
from torch import Tensor, nn
from tqdm import tqdm

from companion.data.episode import Episode, EpisodeBatch
from companion.utils import atomic_write

__all__ = [
    "AccuracyCI",
    "FewShotLearner",
    "History",
    "TaskSource",
    "accuracy",
    "evaluate",
    "fit",
    "mean_ci95",
]

Z_95 = 1.959963984540054  # two-sided 95% quantile of the standard normal


@dataclass(frozen=True)
class AccuracyCI:
    """Mean of per-episode accuracies with the half-width of its 95% confidence interval.

    ``ci95 = 1.96 * std / sqrt(n)`` (normal approximation over episodes, as in the papers).
    Values are fractions in ``[0, 1]``; ``str()`` shows percentages.
    """

    mean: float
    ci95: float
    n_episodes: int
    values: tuple[float, ...] = field(default=(), repr=False)

    def __str__(self) -> str:
        return f"{100 * self.mean:.2f} ± {100 * self.ci95:.2f}% ({self.n_episodes} episodes)"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (without the per-episode values)."""
        return {"mean": self.mean, "ci95": self.ci95, "n_episodes": self.n_episodes}


def mean_ci95(values: Sequence[float] | Tensor) -> AccuracyCI:
    """Mean and 95% confidence half-width of per-episode scores (at least two)."""
    v = torch.as_tensor(values, dtype=torch.float64).flatten()
    if v.numel() < 2:
        raise ValueError(f"need at least 2 values for a confidence interval, got {v.numel()}")
    if not torch.isfinite(v).all():
        raise ValueError("values must be finite")
    half = Z_95 * v.std(unbiased=True).item() / math.sqrt(v.numel())
    return AccuracyCI(v.mean().item(), half, v.numel(), tuple(v.tolist()))


def accuracy(logits: Tensor, labels: Tensor) -> Tensor:
    """Fraction of rows whose arg-max equals the label. ``[n, n_way]``, ``[n]`` -> scalar."""
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"expected logits [n, n_way] and labels [n], got "
                         f"{tuple(logits.shape)} and {tuple(labels.shape)}")
    return (logits.argmax(dim=1) == labels).float().mean()


@runtime_checkable
class FewShotLearner(Protocol):
    """What :func:`fit` and :func:`evaluate` need from a method (ProtoNet, MAML, ...)."""

    def meta_loss(self, batch: EpisodeBatch) -> tuple[Tensor, dict[str, Tensor]]:
        """Differentiable mean query loss over a batch of tasks, plus metrics to log."""
        ...

    def predict(self, episode: Episode) -> Tensor:
        """``[n_query, n_way]`` class scores for the query set, after using the support set."""
        ...


class TaskSource(Protocol):
    """Anything that draws task batches from its own ``torch.Generator`` (e.g. EpisodeSampler)."""

    generator: torch.Generator

    def sample_batch(self, n_tasks: int) -> EpisodeBatch: ...


def _device_of(learner: object) -> torch.device | None:
    if isinstance(learner, nn.Module):
        param = next(learner.parameters(), None)
        return param.device if param is not None else None
    return None


def evaluate(
    learner: FewShotLearner | Callable[[Episode], Tensor],
    sampler: Any,
    *,
    n_episodes: int = 600,
    progress: bool = True,
    desc: str = "evaluate",
) -> AccuracyCI:
    """Accuracy on ``n_episodes`` episodes from ``sampler`` (mean and 95% CI).

    Args:
        learner: an object with ``predict(episode)`` (put in eval mode if it is an
            ``nn.Module``) or a plain function ``episode -> [n_query, n_way]`` scores.
        sampler: has ``sample() -> Episode``; give it a fixed seed so that every method is
            scored on the same episodes.
        n_episodes: number of test episodes (>= 2; the papers use 600).
        progress: show a tqdm bar.
    """
    if not isinstance(n_episodes, int) or n_episodes < 2:
        raise ValueError(f"n_episodes must be an int >= 2, got {n_episodes!r}")
    predict = learner.predict if hasattr(learner, "predict") else learner
    device = _device_of(learner)
    was_training = isinstance(learner, nn.Module) and learner.training
    if isinstance(learner, nn.Module):
        learner.eval()
    scores = []
    try:
        for _ in tqdm(range(n_episodes), desc=desc, disable=not progress, leave=False):
            episode = sampler.sample()
            if device is not None and episode.device != device:
                episode = episode.to(device)
            scores.append(accuracy(predict(episode), episode.query_y))
    finally:
        if isinstance(learner, nn.Module):
            learner.train(was_training)
    return mean_ci95(torch.stack(scores).cpu())


@dataclass
class History:
    """What :func:`fit` recorded: per-iteration loss and metrics, validation points, time."""

    iteration: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    validation: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit(
    learner: nn.Module,
    tasks: TaskSource,
    optimizer: torch.optim.Optimizer,
    *,
    iterations: int,
    meta_batch_size: int = 1,
    scheduler: Any = None,
    validate: Callable[[], AccuracyCI] | None = None,
    validate_every: int = 0,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 100,
    progress: bool = True,
    desc: str = "meta-train",
) -> History:
    """Meta-train ``learner`` for ``iterations`` outer steps on batches from ``tasks``.

    Each step: draw ``meta_batch_size`` tasks, ``loss, metrics = learner.meta_loss(batch)``,
    back-propagate, step the optimiser (and the scheduler, if any).

    Args:
        learner: an ``nn.Module`` with ``meta_loss`` (see :class:`FewShotLearner`).
        tasks: task source with ``sample_batch(n)`` and a ``generator``.
        optimizer: over ``learner``'s parameters.
        iterations: total outer steps (> 0), including those done before a resume.
        meta_batch_size: tasks per outer step (> 0).
        scheduler: optional learning-rate scheduler, stepped once per iteration.
        validate: optional function returning an :class:`AccuracyCI` (e.g. a partial
            :func:`evaluate` on validation classes), called every ``validate_every`` steps.
        checkpoint: optional ``.pt`` path. If it exists, training resumes from it; it is
            rewritten (atomically) every ``checkpoint_every`` steps and at the end.
        progress: show a tqdm bar with the running loss.

    Returns:
        The :class:`History` of the whole run (including the part before a resume).
    """
    for name, value in (("iterations", iterations), ("meta_batch_size", meta_batch_size),
                        ("checkpoint_every", checkpoint_every)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if (not isinstance(validate_every, int) or validate_every < 0
            or (validate_every and validate is None)):
        raise ValueError("validate_every must be an int >= 0, and > 0 only together with "
                         "validate=")
    if not hasattr(learner, "meta_loss"):
        raise ValueError("learner must have a meta_loss(batch) method (see FewShotLearner)")
    history, start = History(), 0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.is_file():
        start, history = _load_checkpoint(ckpt, learner, optimizer, scheduler, tasks)
        if start > iterations:
            raise ValueError(f"checkpoint {ckpt} is at iteration {start}, beyond "
                             f"iterations={iterations}")
    device = _device_of(learner)
    meta_loss = cast(FewShotLearner, learner).meta_loss
    learner.train()
    began = time.perf_counter() - history.seconds
    bar = tqdm(range(start, iterations), desc=desc, disable=not progress,
               initial=start, total=iterations)
    for it in bar:
        batch = tasks.sample_batch(meta_batch_size)
        if device is not None and batch.device != device:
            batch = batch.to(device)
        loss, metrics = meta_loss(batch)
        if not torch.isfinite(loss):
            raise RuntimeError(f"the meta-training loss became {loss.item()} at iteration "
                               f"{it + 1}; lower the learning rate(s) or check the data")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        _record(history, it + 1, loss, metrics)
        bar.set_postfix(loss=f"{history.loss[-1]:.3f}", refresh=False)
        if validate_every and (it + 1) % validate_every == 0:
            result = validate()  # type: ignore[misc]
            learner.train()
            history.validation.append({"iteration": it + 1, **result.to_dict()})
        history.seconds = time.perf_counter() - began
        if ckpt is not None and ((it + 1) % checkpoint_every == 0 or it + 1 == iterations):
            _save_checkpoint(ckpt, it + 1, history, learner, optimizer, scheduler, tasks)
    bar.close()
    return history


def _record(history: History, iteration: int, loss: Tensor, metrics: dict[str, Tensor]) -> None:
    history.iteration.append(iteration)
    history.loss.append(loss.item())
    for name, value in metrics.items():
        history.metrics.setdefault(name, []).append(float(value))


def _save_checkpoint(path: Path, iteration: int, history: History, learner: nn.Module,
                     optimizer: torch.optim.Optimizer, scheduler: Any, tasks: TaskSource) -> None:
    own = _learner_generator(learner)
    state = {
        "iteration": iteration,
        "history": history.to_dict(),
        "learner": learner.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "task_generator": tasks.generator.get_state(),
        "learner_generator": own.get_state() if own is not None else None,
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }
    with atomic_write(path) as tmp:
        torch.save(state, tmp)


def _load_checkpoint(path: Path, learner: nn.Module, optimizer: torch.optim.Optimizer,
                     scheduler: Any, tasks: TaskSource) -> tuple[int, History]:
    state = torch.load(path, map_location="cpu", weights_only=False)
    learner.load_state_dict(state["learner"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        if state["scheduler"] is None:
            raise ValueError(f"checkpoint {path} has no scheduler state, but a scheduler was "
                             "given: its learning-rate schedule would restart")
        scheduler.load_state_dict(state["scheduler"])
    tasks.generator.set_state(state["task_generator"])
    own = _learner_generator(learner)
    if own is not None and state.get("learner_generator") is not None:
        own.set_state(state["learner_generator"])
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state["iteration"], History(**state["history"])


def _learner_generator(learner: nn.Module) -> torch.Generator | None:
    """A learner's own random generator (e.g. Reptile's minibatch order), if it has one."""
    generator = getattr(learner, "generator", None)
    return generator if isinstance(generator, torch.Generator) else None
