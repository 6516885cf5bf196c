"""pytest plugin for `make test`'s nbval run: keep the outputs nbval produced, for the site build.

nbval executes every chapter and then throws the outputs away; the site build would have to
execute every chapter a second time (about 10 minutes on 2 cores) to show them. With this plugin
(``-p tools.nbval_cache`` and ``COMPANION_NBVAL_CACHE=DIR``) every notebook whose code cells
*all* ran and passed is stored, with the outputs nbval received from the kernel, in the
jupyter-cache at DIR: the cache Jupyter Book's ``execute_notebooks: cache`` mode reads
(``_build/.jupyter_cache``). The test build then finds each chapter in the cache (matched by a
hash of its code cells, so an edited chapter is never served stale outputs) and renders the
outputs without executing anything. A notebook with a failed or skipped cell is not stored; the
build would execute it itself.

Chapter: Appendix (how the site is built and tested).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Generator
from pathlib import Path
from typing import Any

import nbformat
import pytest

ENV = "COMPANION_NBVAL_CACHE"

_outputs: defaultdict[Path, dict[int, list[Any]]] = defaultdict(dict)
_seconds: defaultdict[Path, float] = defaultdict(float)
_incomplete: set[Path] = set()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, Any, None]:
    outcome = yield
    if not hasattr(item, "test_outputs") or not hasattr(item, "cell_num"):
        return  # not an nbval cell
    report = outcome.get_result()
    path = Path(item.path).resolve()
    if report.when == "call":
        _seconds[path] += report.duration
        if report.passed and item.test_outputs is not None:
            _outputs[path][item.cell_num] = [nbformat.from_dict(dict(o))
                                             for o in item.test_outputs]
        else:
            _incomplete.add(path)
    elif not report.passed:  # setup or teardown failed, or the cell was skipped
        _incomplete.add(path)


def store(path: Path, outputs: dict[int, list[Any]], cache_dir: Path,
          seconds: float = 0.0) -> bool:
    """Store ``path`` with ``outputs`` (by code-cell index) in the jupyter-cache at ``cache_dir``.

    Args:
        path: the source notebook (as committed: without outputs).
        outputs: the outputs of each code cell, keyed by the cell's index among code cells.
        cache_dir: the jupyter-cache folder (created if missing).
        seconds: the execution time to record.

    Returns:
        True if stored; False if some code cell has no outputs entry (it did not run).
    """
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    nb = nbformat.read(str(path), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    if set(outputs) != set(range(len(code))):
        return False
    for i, cell in enumerate(code):
        cell.outputs = outputs[i]
        cell.execution_count = i + 1
    cache = get_cache(str(cache_dir))
    cache.cache_notebook_bundle(
        CacheBundleIn(nb, str(path), data={"execution_seconds": seconds, "executed_by": "nbval"}),
        check_validity=False, overwrite=True)
    return True


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get(ENV)
    if not target:
        return
    stored = [p for p, outs in sorted(_outputs.items())
              if p not in _incomplete and store(p, outs, Path(target), _seconds[p])]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"nbval_cache: stored {len(stored)} executed notebook(s) in "
                            f"{target}" + (f"; not stored (a cell failed or was skipped): "
                                           f"{sorted(p.name for p in _incomplete)}"
                                           if _incomplete else ""))
