"""How long a named experiment will take on this machine, measured before committing to it.

``python -m companion.experiments estimate NAME`` builds the experiment exactly as ``run``
does (same learner, optimiser, data and episode shapes), times a few training steps after a
warm-up, and times validation and the whole test protocol on a few episodes; it then scales
each to the configuration's budget, and reports the peak memory (will the run fit this
machine?). Nothing is written and no checkpoint is touched.

The estimate is a measurement on *this* machine under *its current load*: it says so when the
1-minute load average shows other work (a run in the background slows both). Training steps
of one configuration cost about the same throughout a run, so the scaling is linear; the
fixed cost of starting a test (building samplers) is counted once per few episodes, which
makes the test part slightly pessimistic.

Chapter: MAML (results of longer runs).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import dataclass, replace
from typing import Any

import torch

from companion.experiments.base import ExperimentConfig
from companion.experiments.prepare import prepare
from companion.experiments.registry import spec_for
from companion.training import fit
from companion.utils import describe_device, get_device

__all__ = ["RunEstimate", "estimate_run"]


@dataclass(frozen=True)
class RunEstimate:
    """Measured cost of one configuration, scaled to its budget (seconds unless named)."""

    name: str
    device: str
    threads: int
    seconds_per_step: float  # median over the timed steps
    step_seconds: tuple[float, ...]  # every timed step, for the spread
    train_seconds: float  # seconds_per_step x iterations
    validation_seconds: float  # all validations of the run
    test_seconds: float  # the whole test protocol (every test setting and protocol)
    load_average: float | None  # 1-minute load average when the estimate started
    cpus: int
    # peak memory in MiB: on a CPU the process's peak resident set since it started (the CLI
    # runs in a fresh process; in a notebook an earlier, larger peak shows instead); on a GPU
    # the peak memory reserved by PyTorch's caching allocator during the estimate (the CUDA
    # context, a few hundred MiB, not included); None where the platform reports neither
    peak_memory_mb: float | None = None

    @property
    def total_seconds(self) -> float:
        return self.train_seconds + self.validation_seconds + self.test_seconds

    @property
    def busy(self) -> bool:
        """Whether other work was running (load average above a quarter of the CPUs)."""
        return self.load_average is not None and self.load_average > 0.25 * self.cpus

    def report(self, cfg: ExperimentConfig) -> str:
        """A few lines for the command line."""
        spread = f"{min(self.step_seconds):.3g}-{max(self.step_seconds):.3g}"
        n_val = cfg.iterations // cfg.val_every if cfg.val_every else 0
        parts = [("training", f"{cfg.iterations} steps", self.train_seconds),
                 ("validation", f"{n_val} x {cfg.val_episodes} episodes",
                  self.validation_seconds),
                 ("test", f"{cfg.test_episodes} episodes", self.test_seconds),
                 ("total", "", self.total_seconds)]
        lines = [f"{self.name} on {self.device}: {self.seconds_per_step:.3g} s per training "
                 f"step (median of {len(self.step_seconds)} after a warm-up; {spread} s)"]
        lines += [f"  {what:<12}{size:<22}{_hours(seconds)}" for what, size, seconds in parts]
        if self.peak_memory_mb is not None:
            what = ("reserved by PyTorch's CUDA allocator, the CUDA context not included"
                    if self.device.startswith("cuda") else
                    "the process's peak resident set: PyTorch, data and training")
            lines.append(f"  {'memory':<12}{'peak':<22}{self.peak_memory_mb / 1024:7.2f} GiB "
                         f"({what})")
        if self.busy:
            lines.append(f"note: the 1-minute load average was {self.load_average:.2f} on "
                         f"{self.cpus} CPUs: other work shares this machine, so these times "
                         "are longer than on a quiet one")
        return "\n".join(lines)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:7.2f} h ({seconds / 60:.0f} min)"


def _peak_memory_mb(device: torch.device) -> float | None:
    """Peak memory in MiB: reserved by CUDA's caching allocator since its last reset on a GPU,
    else the process's peak resident set since it started."""
    if device.type == "cuda":
        return torch.cuda.max_memory_reserved(device) / 2**20
    try:
        import resource
    except ImportError:  # Windows has no resource module
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS, KiB elsewhere
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):  # not every platform has it
        return None


def estimate_run(cfg: ExperimentConfig, *, seed: int = 0,
                 device: str | torch.device | None = None, steps: int = 5,
                 episodes: int = 10) -> RunEstimate:
    """Time ``steps`` training steps (after one warm-up) and ``episodes`` validation and test
    episodes of ``cfg``; scale them to its ``iterations``, validations and test episodes.

    Args:
        cfg: a registered or hand-made configuration (``get_config(name)``).
        seed: seeds the learner's initialisation and the episodes, as in ``run``.
        device: as in ``run`` (default: ``$COMPANION_DEVICE``, else CUDA if available, else CPU).
        steps: timed training steps (>= 1).
        episodes: test and validation episodes actually run (>= 2), scaled up.

    Raises:
        ValueError: ``steps`` < 1 or ``episodes`` < 2 (named), or a bad configuration.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 2:
        raise ValueError(f"episodes must be an int >= 2 (a confidence interval needs two), "
                         f"got {episodes!r}")
    load = _load_average()
    dev = get_device(device)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    state = prepare(cfg, seed, dev, task_seed=seed)  # what run_experiment starts from
    learner, data, source = state.learner, state.data, state.source

    def one_step() -> float:
        history = fit(learner, state.tasks, state.optimizer, iterations=1,
                      meta_batch_size=cfg.meta_batch_size, scheduler=state.scheduler,
                      progress=False)
        return history.seconds

    one_step()  # warm-up: first-call allocations and dispatch
    timed = tuple(one_step() for _ in range(steps))
    per_step = statistics.median(timed)

    small: Any = replace(cfg, test_episodes=min(episodes, cfg.test_episodes),
                         val_episodes=min(episodes, cfg.val_episodes))
    validation = 0.0
    if cfg.val_every:
        _, validate = source(small, data, learner, seed)
        if validate is not None:
            started = time.perf_counter()
            validate()
            per_episode = (time.perf_counter() - started) / small.val_episodes
            validation = per_episode * cfg.val_episodes * (cfg.iterations // cfg.val_every)
    started = time.perf_counter()
    spec_for(cfg).evaluate(small, learner, data, progress=False, device=dev)
    test = (time.perf_counter() - started) * cfg.test_episodes / small.test_episodes
    return RunEstimate(name=cfg.name, device=describe_device(dev),
                       threads=torch.get_num_threads(), seconds_per_step=per_step,
                       step_seconds=timed, train_seconds=per_step * cfg.iterations,
                       validation_seconds=validation, test_seconds=test, load_average=load,
                       cpus=os.cpu_count() or 1, peak_memory_mb=_peak_memory_mb(dev))
