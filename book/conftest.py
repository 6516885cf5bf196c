"""pytest plugin for `make test`'s nbval run: wall time per notebook, and a hard limit.

nbval turns every cell into a test item, so pytest's --durations lists cells. This sums the
setup, call and teardown times of each notebook's items (the kernel start included), prints a
table of whole notebooks, slowest first, and fails the run if one notebook took longer than
the hard limit: 300 s, or ``$COMPANION_NOTEBOOK_LIMIT_S`` seconds. The budget each chapter is
written for is 3 minutes on 2 CPU cores; the limit above it absorbs a busy machine's noise.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping

import pytest

BUDGET_S = 180.0
LIMIT_S = 300.0
LIMIT_ENV = "COMPANION_NOTEBOOK_LIMIT_S"
_seconds: defaultdict[str, float] = defaultdict(float)


def notebook_limit(environ: Mapping[str, str]) -> float:
    """The hard limit in seconds: ``$COMPANION_NOTEBOOK_LIMIT_S`` if set, else 300."""
    value = environ.get(LIMIT_ENV, "").strip()
    if not value:
        return LIMIT_S
    try:
        limit = float(value)
    except ValueError:
        limit = float("nan")
    if not limit > 0 or limit == float("inf"):
        raise pytest.UsageError(f"{LIMIT_ENV}={value!r}: give a positive number of seconds")
    return limit


def over_limit(seconds: Mapping[str, float], limit: float) -> list[str]:
    """One message per notebook whose time exceeds ``limit``, slowest first."""
    return [f"{path} took {secs:.1f} s, over the hard limit of {limit:g} s per notebook "
            f"(${LIMIT_ENV})"
            for path, secs in sorted(seconds.items(), key=lambda kv: -kv[1]) if secs > limit]


def pytest_configure(config: pytest.Config) -> None:
    notebook_limit(os.environ)  # a malformed limit stops the run before anything executes


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _seconds[path] += report.duration


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if over_limit(_seconds, notebook_limit(os.environ)) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _seconds:
        return
    limit = notebook_limit(os.environ)
    terminalreporter.section(f"wall time per notebook (budget {BUDGET_S:g} s each on 2 CPU "
                             f"cores, hard limit {limit:g} s)")
    for path, secs in sorted(_seconds.items(), key=lambda kv: -kv[1]):
        flag = "  OVER THE LIMIT" if secs > limit else "  over budget" if secs > BUDGET_S else ""
        terminalreporter.write_line(f"{secs:8.1f} s  {path}{flag}")
    for message in over_limit(_seconds, limit):
        terminalreporter.write_line(f"FAILED (time): {message}", red=True, bold=True)
