"""The one training loop: :func:`fit`, for every learner in the book.

The *learner* owns what one training step means; the loop owns everything around it:
drawing batches, devices, the optimiser step (unless the learner takes it), schedulers,
validation, checkpoints with exact resume, history, progress bars and several processes.
A learner provides one of

* ``training_loss(batch) -> (loss, metrics)``: the loop back-propagates, averages the
  gradients over processes and steps every optimiser (plain supervised training, feature
  alignment, episodic learners);
* ``meta_loss(batch) -> (loss, metrics)``: the same, under the name the meta-learners of
  chapters 2-4 use;
* ``training_step(batch, optimizer) -> (loss, metrics)``: the learner back-propagates and
  steps itself (per-task gradient methods such as PCGrad or MGDA, several optimisers as in
  GradNorm); with several processes it calls
  :func:`companion.engine.all_reduce_gradients` before its steps.

A batch is whatever the data source's ``sample_batch(n)`` returns: an episode batch, a
:class:`~companion.data.LabelledBatch`, a pair (source, target) or a dict of task batches.

Chapter: Concepts (first experiment); used by every later chapter.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from companion.data.batches import generators_of
from companion.engine import checkpoint as ckpt_io
from companion.engine.distributed import (
    all_reduce_gradients,
    all_reduce_mean,
    any_rank,
    broadcast_module,
    world_size,
)
from companion.metrics import MeanCI

__all__ = ["History", "fit", "move_batch"]

Metrics = Mapping[str, Tensor | float]


@dataclass
class History:
    """What :func:`fit` recorded: per-iteration loss and metrics, validation points, time.

    With several processes, the loss and metrics are means over the ranks. ``segments`` has
    one entry per call of :func:`fit` that trained (a resumed run has several): ``first`` and
    ``last`` step, ``threads`` (CPU threads per process), ``processes``, ``device`` type and
    ``seconds``, so a run resumed on other hardware says which steps ran where.
    """

    iteration: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    validation: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    segments: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def move_batch(batch: Any, device: torch.device) -> Any:
    """``batch`` on ``device``: objects with ``.to`` and ``.device``, tuples, lists, dicts."""
    if isinstance(batch, Tensor) or (hasattr(batch, "to") and hasattr(batch, "device")):
        return batch if batch.device == device else batch.to(device)
    if isinstance(batch, tuple):
        return tuple(move_batch(b, device) for b in batch)
    if isinstance(batch, list):
        return [move_batch(b, device) for b in batch]
    if isinstance(batch, Mapping):
        return {k: move_batch(v, device) for k, v in batch.items()}
    return batch


def _device_of(learner: nn.Module) -> torch.device | None:
    param = next(learner.parameters(), None)
    return param.device if param is not None else None


def _as_list(value: Any, kind: type | None, name: str) -> list[Any]:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if kind is not None and not all(isinstance(v, kind) for v in items):
        raise ValueError(f"{name} must be a torch.optim.Optimizer or a sequence of them, got "
                         f"{[type(v).__name__ for v in items]}")
    return items


def _step_function(learner: nn.Module, optimizer: Any,
                   optimizers: list[torch.optim.Optimizer]
                   ) -> Callable[[Any, int], tuple[Tensor, Metrics]]:
    """One training step of ``learner``: its own ``training_step``, or loss -> backward ->
    gradient averaging over processes -> every optimiser's step."""
    if callable(getattr(learner, "training_step", None)):
        return lambda batch, _: learner.training_step(batch, optimizer)  # type: ignore[operator]
    objective = getattr(learner, "training_loss", None) or getattr(learner, "meta_loss", None)
    if not callable(objective):
        raise ValueError(f"learner ({type(learner).__name__}) must define training_loss(batch), "
                         "meta_loss(batch) or training_step(batch, optimizer); see fit's "
                         "documentation")

    def step(batch: Any, iteration: int) -> tuple[Tensor, Metrics]:
        loss, metrics = objective(batch)
        _check_finite(loss, iteration)
        for o in optimizers:
            o.zero_grad(set_to_none=True)
        loss.backward()
        all_reduce_gradients(learner.parameters())
        for o in optimizers:
            o.step()
        return loss, metrics

    return step


def _check_finite(loss: Tensor, iteration: int) -> None:
    if not torch.isfinite(loss).all():
        raise RuntimeError(f"the training loss became {loss.detach().cpu().tolist()} at "
                           f"iteration {iteration}; lower the learning rate(s) or check the "
                           "data")


@contextlib.contextmanager
def _deferred_interrupt(enabled: bool) -> Iterator[threading.Event]:
    """Turn Ctrl-C into a flag that the loop checks between steps (so the checkpoint it then
    writes is consistent); a second Ctrl-C interrupts at once."""
    flag = threading.Event()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _check_arguments(iterations: int, batch_size: int, size_name: str, checkpoint_every: int,
                     validate: Callable[[], MeanCI] | None, validate_every: int) -> None:
    for name, value in (("iterations", iterations), (size_name, batch_size),
                        ("checkpoint_every", checkpoint_every)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if (isinstance(validate_every, bool) or not isinstance(validate_every, int)
            or validate_every < 0 or (validate_every and validate is None)):
        raise ValueError("validate_every must be an int >= 0, and > 0 only together with "
                         "validate=")


def fit(
    learner: nn.Module,
    data: Any,
    optimizer: torch.optim.Optimizer | Sequence[torch.optim.Optimizer],
    *,
    iterations: int,
    batch_size: int | None = None,
    meta_batch_size: int | None = None,
    scheduler: Any = None,
    validate: Callable[[], MeanCI] | None = None,
    validate_every: int = 0,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 100,
    identity: Mapping[str, Any] | None = None,
    progress: bool = True,
    desc: str = "train",
) -> History:
    """Train ``learner`` for ``iterations`` steps on batches drawn from ``data``.

    Each step: ``batch = data.sample_batch(batch_size)`` (moved to the learner's device), then
    the learner's step (see the module docstring), then the schedulers. Interrupting with
    Ctrl-C finishes the current step, writes the checkpoint (if one is configured) and raises
    ``KeyboardInterrupt``; running the same call again resumes bit-identically on a CPU.

    Args:
        learner: an ``nn.Module`` with ``training_loss``, ``meta_loss`` or ``training_step``.
        data: a source with ``sample_batch(n)`` and a ``generator`` (or ``generators``), e.g.
            an :class:`~companion.data.EpisodeSampler` or a :class:`~companion.data.BatchSampler`.
        optimizer: one optimiser, or a sequence (all are stepped, checkpointed and restored).
        iterations: total steps (> 0), including those done before a resume.
        batch_size: items per step (tasks for episodic learners, examples otherwise); default 1.
        meta_batch_size: the same, under the name the meta-learning chapters use.
        scheduler: optional learning-rate scheduler (or a sequence), stepped once per step.
        validate: optional function returning a :class:`~companion.metrics.MeanCI`, called
            every ``validate_every`` steps.
        checkpoint: optional ``.pt`` path: resumed from if it exists, rewritten atomically
            every ``checkpoint_every`` steps, at the end and on Ctrl-C (rank 0 writes).
        identity: JSON-serialisable description of the run (e.g. its configuration), stored in
            the checkpoint; resuming a checkpoint of another identity raises
            :class:`~companion.engine.CheckpointError`.
        progress: show a tqdm bar with the running loss.

    Returns:
        The :class:`History` of the whole run (including the part before a resume).
    """
    if batch_size is not None and meta_batch_size is not None:
        raise ValueError("pass batch_size or meta_batch_size (the same thing), not both")
    size_name = "meta_batch_size" if meta_batch_size is not None else "batch_size"
    size = batch_size if batch_size is not None else meta_batch_size
    _check_arguments(iterations, 1 if size is None else size, size_name, checkpoint_every,
                     validate, validate_every)
    size = 1 if size is None else size
    if not isinstance(learner, nn.Module):
        raise ValueError(f"learner must be an nn.Module, got {type(learner).__name__}")
    if not callable(getattr(data, "sample_batch", None)):
        raise ValueError(f"data must have sample_batch(n), got {type(data).__name__}")
    optimizers = _as_list(optimizer, torch.optim.Optimizer, "optimizer")
    schedulers = _as_list(scheduler, None, "scheduler")
    step = _step_function(learner, optimizer, optimizers)
    generators = generators_of(data)
    own = getattr(learner, "generator", None)
    own = own if isinstance(own, torch.Generator) else None
    ident = ckpt_io.run_identity(learner, identity)
    state: dict[str, Any] = {"identity": ident, "learner": learner, "optimizers": optimizers,
             "schedulers": schedulers, "generators": generators, "learner_generator": own}
    history, start = History(), 0
    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and path.is_file():
        start, stored = ckpt_io.load_checkpoint(path, n_ranks=world_size(), **state)
        history = History.from_dict(stored)
        if start > iterations:
            raise ValueError(f"checkpoint {path} is at iteration {start}, beyond "
                             f"iterations={iterations}")
    broadcast_module(learner)
    device = _device_of(learner)

    def save(iteration: int) -> None:
        if path is not None:
            ckpt_io.save_checkpoint(path, iteration=iteration, history=history.to_dict(),
                                    **state)

    learner.train()
    began, earlier = time.perf_counter() - history.seconds, history.seconds
    segment: dict[str, Any] = {  # what this call trains on, added to history at its first step
        "first": start + 1, "last": start, "threads": torch.get_num_threads(),
        "processes": world_size(), "device": "cpu" if device is None else device.type,
        "seconds": 0.0}
    bar = tqdm(range(start, iterations), desc=desc, disable=not progress, initial=start,
               total=iterations)
    with _deferred_interrupt(path is not None) as interrupted:
        for it in bar:
            batch = data.sample_batch(size)
            loss, metrics = step(batch if device is None else move_batch(batch, device), it + 1)
            _check_finite(loss, it + 1)
            for s in schedulers:
                if s is not None:
                    s.step()
            _record(history, it + 1, loss, metrics)
            bar.set_postfix(loss=f"{history.loss[-1]:.3f}", refresh=False)
            if validate_every and (it + 1) % validate_every == 0:
                result = validate()  # type: ignore[misc]
                learner.train()
                history.validation.append({"iteration": it + 1, **result.to_dict()})
            if it == start:
                history.segments.append(segment)
            segment["last"] = it + 1
            history.seconds = time.perf_counter() - began
            segment["seconds"] = round(history.seconds - earlier, 3)
            stop = path is not None and any_rank(interrupted.is_set())  # every rank agrees
            if stop or (it + 1) % checkpoint_every == 0 or it + 1 == iterations:
                save(it + 1)
            if stop:
                bar.close()
                raise KeyboardInterrupt(f"interrupted after iteration {it + 1}; the "
                                        f"checkpoint {path} resumes from there")
    bar.close()
    return history


def _record(history: History, iteration: int, loss: Tensor, metrics: Metrics) -> None:
    names = list(metrics)
    values = torch.stack([loss.detach().reshape(()).double().cpu(),
                          *(torch.as_tensor(metrics[n]).detach().reshape(()).double().cpu()
                            for n in names)])
    values = all_reduce_mean(values)  # the same numbers on every rank
    history.iteration.append(iteration)
    history.loss.append(values[0].item())
    for name, value in zip(names, values[1:].tolist(), strict=True):
        history.metrics.setdefault(name, []).append(value)
