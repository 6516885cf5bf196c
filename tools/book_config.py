"""Write the configuration of `make test`'s site build: a copy of _config.yml for the test build.

`make test` builds the book from this copy with warnings as errors. nbval has already executed
every chapter, and `tools/nbval_cache.py` stored each fully executed chapter with its outputs in
the build's jupyter-cache (``_build/.jupyter_cache``), so the copy uses the ``cache`` execution
mode: the build renders the outputs nbval produced without running the chapters again (a
chapter missing from the cache, say after a failed cell, is executed by the build itself). The
browser tests (tests/site/) then check the executed site.

Changes from _config.yml:
- ``execute_notebooks: cache`` (or ``off`` with ``--no-execute``: a quick structural build
  whose chapters show code but no outputs);
- ``stderr_output: remove``: progress bars go to stderr, and the page never shows them; in
  the warnings-as-errors build a warning per progress bar would fail it. Exceptions still fail
  the run (nbval; ``raise_on_error``).

Usage: python tools/book_config.py OUT.yml [--no-execute]
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml


def main(out: str, execute: bool = True) -> None:
    config = yaml.safe_load(Path("_config.yml").read_text())
    run = config.setdefault("execute", {})
    run["execute_notebooks"] = "cache" if execute else "off"
    run["stderr_output"] = "remove"
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(yaml.safe_dump(config, sort_keys=False))


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--no-execute"]
    if len(args) != 1 or any(a.startswith("--") for a in args):
        sys.exit("usage: python tools/book_config.py OUT.yml [--no-execute]")
    main(args[0], execute="--no-execute" not in sys.argv[1:])
