"""pytest plugin for `make test`'s nbval run: wall time per notebook, and a hard limit.

nbval turns every cell into a test item, so pytest's --durations lists cells. This sums the
setup, call and teardown times of each notebook's items (the kernel start included), prints a
table of whole notebooks, slowest first, and fails the run if one notebook took longer than
the hard limit. The budget each chapter is written for is 3 minutes on 2 CPU cores of the
reference machine (the developers' 2-core x86_64 machine, AVX-512); the hard limit is 300 s on
that machine and scales with the speed of the machine that runs the tests. Before any notebook
runs, a fixed PyTorch workload of the kind the chapters run (a small convolutional network,
forward and backward, on the CPU) is timed; a machine slower than the reference gets a
proportionally longer limit, never a shorter one and at most four times as long (a hang, or a
chapter gone badly wrong, still fails on a machine crowded by other work). A CI runner half as
fast then does not fail a chapter that meets its budget, while a chapter grown slow fails.
``$COMPANION_NOTEBOOK_LIMIT_S`` sets an absolute limit in seconds instead (no calibration).
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Mapping

import pytest

BUDGET_S = 180.0
LIMIT_S = 300.0
LIMIT_ENV = "COMPANION_NOTEBOOK_LIMIT_S"
# calibration_seconds() inside pytest on the reference machine, idle: 0.153-0.178 s in eight
# processes, median 0.169 (torch 2.13.0+cpu, 2 threads; 0.27 s on one thread)
REFERENCE_S = 0.165
MAX_FACTOR = 4.0
_seconds: defaultdict[str, float] = defaultdict(float)
_calibration: dict[str, float] = {}


def calibration_seconds(repeats: int = 5) -> float:
    """Median wall time of a fixed CPU workload like the chapters' (a three-block convolutional
    network on 28x28 images, forward and backward, with PyTorch's default threads)."""
    import torch
    from torch import nn

    def block(c_in: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2)]

    generator = torch.Generator().manual_seed(0)
    net = nn.Sequential(*block(1), *block(32), *block(32), nn.Flatten(), nn.Linear(288, 5))
    x = torch.randn(50, 1, 28, 28, generator=generator)
    times = []
    for _ in range(repeats + 1):  # the first pass warms up the allocator and kernels
        start = time.perf_counter()
        for _ in range(10):
            net.zero_grad()
            net(x).square().mean().backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def speed_factor(measured_s: float, reference_s: float = REFERENCE_S) -> float:
    """How many times slower than the reference machine this one ran the calibration, between
    1 (a faster machine keeps the reference limit) and :data:`MAX_FACTOR`."""
    if not (math.isfinite(measured_s) and measured_s > 0 and reference_s > 0):
        raise ValueError(f"measured_s and reference_s must be positive and finite, got "
                         f"{measured_s!r} and {reference_s!r}")
    return min(MAX_FACTOR, max(1.0, measured_s / reference_s))


def notebook_limit(environ: Mapping[str, str], factor: float = 1.0) -> float:
    """The hard limit in seconds: ``$COMPANION_NOTEBOOK_LIMIT_S`` if set, else 300 times
    ``factor`` (:func:`speed_factor` of this machine)."""
    value = environ.get(LIMIT_ENV, "").strip()
    if not value:
        return LIMIT_S * factor
    try:
        limit = float(value)
    except ValueError:
        limit = float("nan")
    if not limit > 0 or limit == float("inf"):
        raise pytest.UsageError(f"{LIMIT_ENV}={value!r}: give a positive number of seconds")
    return limit


def over_limit(seconds: Mapping[str, float], limit: float) -> list[str]:
    """One message per notebook whose time exceeds ``limit``, slowest first."""
    return [f"{path} took {secs:.1f} s, over the hard limit of {limit:.0f} s per notebook "
            f"(${LIMIT_ENV}; see book/conftest.py)"
            for path, secs in sorted(seconds.items(), key=lambda kv: -kv[1]) if secs > limit]


def _factor() -> float:
    """This machine's :func:`speed_factor`, measured once per run (1 with an absolute limit)."""
    if os.environ.get(LIMIT_ENV, "").strip():
        return 1.0
    if "factor" not in _calibration:
        measured = calibration_seconds()
        _calibration.update(measured=measured, factor=speed_factor(measured))
    return _calibration["factor"]


def pytest_configure(config: pytest.Config) -> None:
    notebook_limit(os.environ)  # a malformed limit stops the run before anything executes
    _factor()  # timed before any kernel starts


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _seconds[path] += report.duration


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if over_limit(_seconds, notebook_limit(os.environ, _factor())) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _seconds:
        return
    limit = notebook_limit(os.environ, _factor())
    terminalreporter.section(f"wall time per notebook (budget {BUDGET_S:g} s each on 2 CPU "
                             f"cores, hard limit {limit:.0f} s)")
    if "measured" in _calibration:
        terminalreporter.write_line(
            f"hard limit: {LIMIT_S:g} s x {_calibration['factor']:.2f} (this machine ran the "
            f"calibration workload in {_calibration['measured']:.3f} s, the reference machine in "
            f"{REFERENCE_S:.3f} s; the factor is kept between 1 and {MAX_FACTOR:g})")
    for path, secs in sorted(_seconds.items(), key=lambda kv: -kv[1]):
        flag = "  OVER THE LIMIT" if secs > limit else "  over budget" if secs > BUDGET_S else ""
        terminalreporter.write_line(f"{secs:8.1f} s  {path}{flag}")
    for message in over_limit(_seconds, limit):
        terminalreporter.write_line(f"FAILED (time): {message}", red=True, bold=True)
