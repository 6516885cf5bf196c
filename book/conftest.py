"""pytest plugin for `make test`'s nbval run: report wall time per notebook.

nbval turns every cell into a test item, so pytest's --durations lists cells. This adds a
table of whole notebooks, slowest first, with the 3-minute budget each chapter must meet on
2 CPU cores marked.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

BUDGET_S = 180.0
_seconds: defaultdict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _seconds[report.nodeid.split("::")[0]] += report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _seconds:
        return
    terminalreporter.section("wall time per notebook (budget 180 s each on 2 CPU cores)")
    for path, secs in sorted(_seconds.items(), key=lambda kv: -kv[1]):
        flag = "  OVER BUDGET" if secs > BUDGET_S else ""
        terminalreporter.write_line(f"{secs:8.1f} s  {path}{flag}")
